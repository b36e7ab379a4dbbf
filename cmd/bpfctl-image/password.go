package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"

	"golang.org/x/term"
)

// passwordEnv names the variable holding a private key's password, as with
// cosign: set, even to "", it is used; unset, the password is asked for on
// the terminal.
const passwordEnv = "COSIGN_PASSWORD"

// readPassword returns the password of a private key: $COSIGN_PASSWORD, or
// what the user types on the terminal after prompt (twice, when confirm).
func readPassword(stderr io.Writer, prompt string, confirm bool) ([]byte, error) {
	if pw, ok := os.LookupEnv(passwordEnv); ok {
		return []byte(pw), nil
	}
	fd := int(os.Stdin.Fd())
	if !term.IsTerminal(fd) {
		return nil, fmt.Errorf("no password: set %s (standard input is not a terminal to ask on)", passwordEnv)
	}
	fmt.Fprint(stderr, prompt+": ")
	pw, err := term.ReadPassword(fd)
	fmt.Fprintln(stderr)
	if err != nil {
		return nil, fmt.Errorf("read password: %w", err)
	}
	if confirm {
		fmt.Fprint(stderr, "Enter it again: ")
		again, err := term.ReadPassword(fd)
		fmt.Fprintln(stderr)
		if err != nil {
			return nil, fmt.Errorf("read password: %w", err)
		}
		if !bytes.Equal(pw, again) {
			return nil, errors.New("the passwords do not match")
		}
	}
	return pw, nil
}
