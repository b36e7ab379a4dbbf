package main

import (
	"fmt"

	"github.com/urfave/cli/v2"
	"oras.land/oras-go/v2/registry/remote/credentials"
)

var logoutCommand = &cli.Command{
	Name:        "logout",
	Usage:       "forget the credentials stored for a registry",
	ArgsUsage:   "HOST[:PORT]",
	Description: "Removes the registry's credentials from where login stored them (a credential helper or the Docker config file).",
	Flags:       []cli.Flag{registryConfigFlag()},
	Action:      logout,
}

func logout(c *cli.Context) error {
	host, err := registryHost(c)
	if err != nil {
		return err
	}
	store, err := credentialStore(c)
	if err != nil {
		return fmt.Errorf("registry credentials: %w", err)
	}
	if err := credentials.Logout(c.Context, store, host); err != nil {
		return fmt.Errorf("logout %s: %w", host, err)
	}
	_, err = fmt.Fprintf(c.App.Writer, "Removed the credentials for %s\n", host)
	return err
}
