package image

import (
	"crypto/sha256"
	"debug/elf"
	"encoding/hex"
	"fmt"
	"os"
)

// BusyboxPath is where the toolbox binary is read from; Debian's
// busybox-static package installs it there. GPUSTACK_EMULATOR_BUSYBOX
// overrides it.
const BusyboxPath = "/bin/busybox"

// toolboxApplets are the commands the emulator images provide through
// busybox, as GPUStack's own (Ubuntu-based) images provide them:
// gpustack-deploy runs shell scripts in one-off containers of the
// deployment's image to count, copy, hash and remove files in volumes.
var toolboxApplets = []string{
	"[", "awk", "basename", "cat", "chmod", "chown", "cp", "cut", "dd", "dirname", "du", "echo",
	"env", "false", "find", "grep", "gzip", "head", "ln", "ls", "mkdir", "mv", "printf", "readlink",
	"realpath", "rm", "rmdir", "sed", "sh", "sha256sum", "sleep", "sort", "stat", "tail", "tar",
	"test", "touch", "tr", "true", "wc", "xargs",
}

// toolbox is a statically linked busybox and its digest.
type toolbox struct {
	binary []byte
	digest string
}

// loadToolbox reads the static busybox the images are built with. Without
// one (and without GPUSTACK_EMULATOR_BUSYBOX naming one) the images are
// built without a toolbox: plan, apply, backup and restore work, but what
// runs scripts in the image (cache counts, copies) does not.
func loadToolbox() (*toolbox, error) {
	path := BusyboxPath
	if p := os.Getenv("GPUSTACK_EMULATOR_BUSYBOX"); p != "" {
		path = p
	}
	data, err := os.ReadFile(path)
	if os.IsNotExist(err) && os.Getenv("GPUSTACK_EMULATOR_BUSYBOX") == "" {
		fmt.Fprintln(os.Stderr, "emulator images: no "+path+"; building them without a shell toolbox (apt-get install busybox-static adds it)")
		return &toolbox{digest: "none"}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("emulator toolbox: %w (install Debian's busybox-static: apt-get install busybox-static)", err)
	}
	f, err := elf.Open(path)
	if err != nil {
		return nil, fmt.Errorf("emulator toolbox %s: %w", path, err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return nil, fmt.Errorf("emulator toolbox %s is dynamically linked; the images are FROM scratch and need a static one (apt-get install busybox-static)", path)
		}
	}
	sum := sha256.Sum256(data)
	return &toolbox{binary: data, digest: hex.EncodeToString(sum[:8])}, nil
}

// ToolboxAvailable reports whether images built now carry the toolbox.
func ToolboxAvailable() bool {
	t, err := loadToolbox()
	return err == nil && t.binary != nil
}
