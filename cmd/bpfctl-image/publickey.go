package main

import (
	"fmt"

	"github.com/urfave/cli/v2"

	"github.com/bpfd-dev/bpfd/internal/cliutil"
)

var publicKeyCommand = &cli.Command{
	Name:        "public-key",
	Usage:       "print the public key of a cosign private key",
	ArgsUsage:   " ",
	Description: "Decrypts --key (password from $COSIGN_PASSWORD or the terminal) and prints its public key in PEM, as cosign public-key does, with its fingerprint on stderr; --outfile writes it to a new file instead.",
	Flags: []cli.Flag{
		&cli.StringFlag{Name: "key", Usage: "cosign private `KEY` file", EnvVars: []string{"BPFCTL_IMAGE_KEY"}},
		&cli.StringFlag{Name: "outfile", Usage: "write the PEM to `FILE` (which must not exist)"},
		outputFlag,
	},
	Action: publicKey,
}

// publicKeyOutput is what `public-key --output json` writes.
type publicKeyOutput struct {
	Envelope
	PublicKey   string `json:"publicKey"`
	Fingerprint string `json:"fingerprint"`
}

func publicKey(c *cli.Context) error {
	if _, err := arguments(c, 0, 0, "no arguments"); err != nil {
		return err
	}
	asJSON, err := jsonOutput(c)
	if err != nil {
		return err
	}
	key, err := loadSigningKey(c)
	if err != nil {
		return err
	}
	pub := key.Public()
	if path := c.String("outfile"); path != "" {
		if err := writeNew(path, pub.PEM(), 0o644); err != nil {
			return err
		}
	}
	switch {
	case asJSON:
		return cliutil.WriteJSON(c.App.Writer, publicKeyOutput{Envelope: newEnvelope("PublicKey"), PublicKey: string(pub.PEM()), Fingerprint: pub.Fingerprint()})
	case c.String("outfile") == "":
		_, err = c.App.Writer.Write(pub.PEM())
	}
	fmt.Fprintf(c.App.ErrWriter, "Fingerprint: %s\n", pub.Fingerprint())
	return err
}
