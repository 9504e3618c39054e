package daemon

import (
	"bytes"
	"encoding/binary"
)

// PGS (Blu-ray "Presentation Graphic Stream", a .sup file) segment types.
const (
	pgsPDS = 0x14 // palette definition
	pgsODS = 0x15 // object (bitmap) definition
	pgsPCS = 0x16 // presentation composition
	pgsWDS = 0x17 // window definition
	pgsEND = 0x80 // end of display set
)

// pgsBox is one rectangle of a solid colour shown from start to end
// (seconds) on a width×height picture.
type pgsBox struct {
	width, height int     // of the video
	x, y, w, h    int     // of the box
	start, end    float64 // seconds
	// y, cr, cb: the box's colour (BT.709 studio range); alpha 255.
	luma, cr, cb byte
}

// pgsSup returns a .sup stream showing box: a display set at box.start with
// its composition (PCS), window (WDS), palette (PDS), run-length coded
// bitmap (ODS) and END, and an empty display set at box.end that clears it.
// ffmpeg cannot render text into bitmap subtitles, so the test writes them
// itself; ffmpeg's sup demuxer and pgssub decoder read the result.
func pgsSup(box pgsBox) []byte {
	var b bytes.Buffer
	pts := func(sec float64) uint32 { return uint32(sec * 90000) }
	seg := func(at uint32, typ byte, data []byte) {
		b.WriteString("PG")
		_ = binary.Write(&b, binary.BigEndian, at) // PTS
		_ = binary.Write(&b, binary.BigEndian, uint32(0))
		b.WriteByte(typ)
		_ = binary.Write(&b, binary.BigEndian, uint16(len(data)))
		b.Write(data)
	}
	u16 := func(buf *bytes.Buffer, v int) { _ = binary.Write(buf, binary.BigEndian, uint16(v)) }
	pcs := func(number int, state byte, objects int) []byte {
		var p bytes.Buffer
		u16(&p, box.width)
		u16(&p, box.height)
		p.WriteByte(0x10) // frame rate (ignored by decoders)
		u16(&p, number)
		p.WriteByte(state)
		p.WriteByte(0) // palette update flag
		p.WriteByte(0) // palette ID
		p.WriteByte(byte(objects))
		if objects > 0 {
			u16(&p, 0)     // object ID
			p.WriteByte(0) // window ID
			p.WriteByte(0) // not cropped, not forced
			u16(&p, box.x)
			u16(&p, box.y)
		}
		return p.Bytes()
	}
	wds := func() []byte {
		var p bytes.Buffer
		p.WriteByte(1) // one window
		p.WriteByte(0) // window ID
		u16(&p, box.x)
		u16(&p, box.y)
		u16(&p, box.w)
		u16(&p, box.h)
		return p.Bytes()
	}

	on := pts(box.start)
	seg(on, pgsPCS, pcs(0, 0x80, 1)) // epoch start, one object
	seg(on, pgsWDS, wds())
	seg(on, pgsPDS, []byte{0, 0, 1, box.luma, box.cr, box.cb, 255}) // palette 0 v0: entry 1
	// Run-length coded bitmap: each line is one run of colour 1 and an
	// end-of-line marker. Runs of 64 and more: 00, 11LLLLLL LLLLLLLL, colour.
	var rle bytes.Buffer
	for range box.h {
		switch {
		case box.w >= 64:
			rle.Write([]byte{0, 0xC0 | byte(box.w>>8), byte(box.w), 1})
		case box.w >= 3:
			rle.Write([]byte{0, 0x80 | byte(box.w), 1})
		default:
			for range box.w {
				rle.WriteByte(1)
			}
		}
		rle.Write([]byte{0, 0})
	}
	var ods bytes.Buffer
	u16(&ods, 0)        // object ID
	ods.WriteByte(0)    // version
	ods.WriteByte(0xC0) // first and last in sequence
	n := rle.Len() + 4  // the data length counts width and height
	ods.Write([]byte{byte(n >> 16), byte(n >> 8), byte(n)})
	u16(&ods, box.w)
	u16(&ods, box.h)
	ods.Write(rle.Bytes())
	seg(on, pgsODS, ods.Bytes())
	seg(on, pgsEND, nil)

	off := pts(box.end)
	seg(off, pgsPCS, pcs(1, 0x00, 0)) // normal case, no object: clears the screen
	seg(off, pgsWDS, wds())
	seg(off, pgsEND, nil)
	return b.Bytes()
}
