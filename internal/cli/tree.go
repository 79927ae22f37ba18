package cli

import (
	"io"

	"github.com/spf13/cobra"
)

// CommandTree returns the command tree that Run executes, built as Run
// builds it, for the build tools that document it (man pages, shell
// completions). Nothing runs until the caller executes it.
func CommandTree(stdout, stderr io.Writer) *cobra.Command { return newRootCmd(stdout, stderr) }
