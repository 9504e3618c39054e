// Package tasks is the task service: the one owner of every task's state.
//
// A [Service] holds one entry per task: the record saved in the state file, the engine
// handle, the task's grants (through the token table), its HLS sessions and the state last
// reported to the origin. One mutex guards the entries; one debounced, atomic save writes
// the state file; one remove path ([Service.Remove]) clears everything a task owns. Adds and
// metadata fetches run on goroutines the service owns and waits for on [Service.Close], so a
// caller (the origin link applying a sync reply, the control socket) never blocks on the
// network. Tasks beyond the active limit wait as [StateQueued] in arrival order, stream
// tasks first.
//
// The control socket and the origin link are thin translators onto this package; the media
// listener authorizes through it. It must not import config, media, origin or control: those
// depend on it. Only daemon, media and control (types and error values only) import it.
package tasks
