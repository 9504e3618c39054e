//go:build unix

package cli

import (
	"fmt"
	"os"
	"os/user"
	"strconv"
)

// chownTo gives dir to the account name when we run as root and name is
// someone else; otherwise it does nothing.
func chownTo(dir, name string) error {
	if name == "" || os.Geteuid() != 0 {
		return nil
	}
	u, err := user.Lookup(name)
	if err != nil {
		return fmt.Errorf("--run-as %s: %w", name, err)
	}
	uid, err1 := strconv.Atoi(u.Uid)
	gid, err2 := strconv.Atoi(u.Gid)
	if err1 != nil || err2 != nil {
		return fmt.Errorf("--run-as %s: no numeric uid/gid", name)
	}
	return os.Chown(dir, uid, gid)
}
