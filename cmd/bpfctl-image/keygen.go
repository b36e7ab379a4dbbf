package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"

	"github.com/urfave/cli/v2"

	"github.com/bpfd-dev/bpfd/internal/cliutil"
	"github.com/bpfd-dev/bpfd/pkg/verify"
)

var keygenCommand = &cli.Command{
	Name:      "keygen",
	Usage:     "generate a cosign-compatible signing key pair",
	ArgsUsage: " ",
	Description: `Writes PREFIX.key, an ECDSA P-256 private key encrypted with a password
(from $COSIGN_PASSWORD, or asked for on the terminal), and PREFIX.pub, its
public key in PEM. The files are those of 'cosign generate-key-pair': either
tool signs with the key and verifies with the public key. Existing files are
never overwritten.`,
	Flags: []cli.Flag{
		&cli.StringFlag{Name: "out", Value: "cosign", Usage: "write `PREFIX`.key and PREFIX.pub", EnvVars: []string{"BPFCTL_IMAGE_KEYGEN_OUT"}},
		outputFlag,
	},
	Action: keygen,
}

// keygenResult is keygen's JSON output.
type keygenResult struct {
	Envelope
	PrivateKey  string `json:"privateKey"`
	PublicKey   string `json:"publicKey"`
	Fingerprint string `json:"fingerprint"`
}

func keygen(c *cli.Context) error {
	if _, err := arguments(c, 0, 0, "no arguments"); err != nil {
		return err
	}
	asJSON, err := jsonOutput(c)
	if err != nil {
		return err
	}
	prefix := c.String("out")
	res := keygenResult{Envelope: newEnvelope("Keygen"), PrivateKey: prefix + ".key", PublicKey: prefix + ".pub"}
	for _, path := range []string{res.PrivateKey, res.PublicKey} {
		if _, err := os.Stat(path); err == nil {
			return fmt.Errorf("%s exists: not overwriting a key", path)
		} else if !errors.Is(err, fs.ErrNotExist) {
			return err
		}
	}
	password, err := readPassword(c.App.ErrWriter, "Enter a password for the private key", true)
	if err != nil {
		return err
	}
	kp, err := verify.GenerateKeyPair(password)
	if err != nil {
		return err
	}
	pub, err := verify.ParsePublicKey(kp.PublicPEM)
	if err != nil {
		return err
	}
	res.Fingerprint = pub.Fingerprint()
	if err := writeNew(res.PrivateKey, kp.PrivatePEM, 0o600); err != nil {
		return err
	}
	if err := writeNew(res.PublicKey, kp.PublicPEM, 0o644); err != nil {
		os.Remove(res.PrivateKey)
		return err
	}
	if asJSON {
		return cliutil.WriteJSON(c.App.Writer, res)
	}
	fmt.Fprintf(c.App.Writer, "Private key: %s (encrypted)\nPublic key:  %s (%s)\n", res.PrivateKey, res.PublicKey, res.Fingerprint)
	return nil
}

// writeNew writes data to a new file at path; it fails if path exists and
// leaves no partial file behind.
func writeNew(path string, data []byte, perm os.FileMode) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(path)
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}
