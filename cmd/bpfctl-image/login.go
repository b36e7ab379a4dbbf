package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/urfave/cli/v2"
	"golang.org/x/term"
	"oras.land/oras-go/v2/registry/remote"
	"oras.land/oras-go/v2/registry/remote/auth"
	"oras.land/oras-go/v2/registry/remote/credentials"

	"github.com/bpfd-dev/bpfd/internal/cliutil"
	"github.com/bpfd-dev/bpfd/pkg/artifact"
)

var loginCommand = &cli.Command{
	Name:      "login",
	Usage:     "log in to a registry: check the credentials and store them",
	ArgsUsage: "HOST[:PORT]",
	Description: `Checks the username and password with the registry, then stores them where
Docker does: in the credential helper or credential store the Docker config
names (credHelpers, credsStore), else, like docker login, in the config file
itself (--registry-config, else $DOCKER_CONFIG/config.json or
~/.docker/config.json, created if missing). The password comes from
--password-stdin (recommended in scripts), or is asked for on the terminal.
Every command that reads a registry uses what login stored.`,
	Flags: flags([]cli.Flag{
		&cli.StringFlag{Name: "username", Aliases: []string{"u"}, Usage: "`USER` name", EnvVars: []string{"BPFCTL_IMAGE_USERNAME"}},
		&cli.BoolFlag{Name: "password-stdin", Usage: "read the password (or token) from standard input"},
	}, loginRegistryFlags),
	Action: login,
}

// loginRegistryFlags are the registry flags without --registry-config, which
// login may create.
var loginRegistryFlags = flags(connectFlags, []cli.Flag{registryConfigFlag(), debugFlag})

// registryConfigFlag is --registry-config for login and logout: the file need
// not exist yet.
func registryConfigFlag() cli.Flag {
	return &cli.StringFlag{
		Name:    "registry-config",
		Usage:   "Docker `config.json` to store credentials in (default: $DOCKER_CONFIG/config.json, else ~/.docker/config.json)",
		EnvVars: []string{"BPFCTL_IMAGE_REGISTRY_CONFIG"},
	}
}

// credentialStore opens the Docker credential store that --registry-config
// names, or the user's.
func credentialStore(c *cli.Context) (*credentials.DynamicStore, error) {
	opts := credentials.StoreOptions{AllowPlaintextPut: true, DetectDefaultNativeStore: true}
	if path := c.String("registry-config"); path != "" {
		return credentials.NewStore(path, opts)
	}
	return credentials.NewStoreFromDocker(opts)
}

// registryHost parses the HOST[:PORT] argument of login and logout.
func registryHost(c *cli.Context) (string, error) {
	args, err := arguments(c, 1, 1, "HOST[:PORT]")
	if err != nil {
		return "", err
	}
	host := strings.TrimSuffix(strings.TrimPrefix(strings.TrimPrefix(args[0], "https://"), "http://"), "/")
	ref, err := artifact.ParseReference(host + "/x")
	if err != nil || ref.Transport != artifact.Registry || ref.Registry != host {
		return "", cliutil.Usagef("%s: not a registry host[:port]", args[0])
	}
	return host, nil
}

func login(c *cli.Context) error {
	host, err := registryHost(c)
	if err != nil {
		return err
	}
	user := c.String("username")
	if user == "" {
		return cliutil.Usagef("login: --username is required")
	}
	password, err := readLoginPassword(c)
	if err != nil {
		return err
	}
	store, err := credentialStore(c)
	if err != nil {
		return fmt.Errorf("registry credentials: %w", err)
	}
	reg, err := remote.NewRegistry(host)
	if err != nil {
		return cliutil.UsageError{Err: err}
	}
	ref, _ := artifact.ParseReference(host + "/x")
	reg.PlainHTTP = c.Bool("plain-http") || ref.IsLoopback()
	client, err := httpClient(c)
	if err != nil {
		return err
	}
	reg.Client = &auth.Client{Client: client, Cache: auth.NewCache(), Header: map[string][]string{"User-Agent": {"bpfd"}}}
	if err := credentials.Login(c.Context, store, reg, auth.Credential{Username: user, Password: password}); err != nil {
		return fmt.Errorf("login %s: %w", host, err)
	}
	if !store.IsAuthConfigured() {
		fmt.Fprintf(c.App.ErrWriter, "Warning: the password is stored unencrypted in %s; configure a credential helper (credsStore) to avoid it\n", store.ConfigPath())
	}
	_, err = fmt.Fprintf(c.App.Writer, "Login to %s succeeded\n", host)
	return err
}

// readLoginPassword reads the password from standard input
// (--password-stdin) or the terminal.
func readLoginPassword(c *cli.Context) (string, error) {
	if c.Bool("password-stdin") {
		line, err := bufio.NewReader(io.LimitReader(os.Stdin, 64<<10)).ReadString('\n')
		if err != nil && err != io.EOF {
			return "", fmt.Errorf("read the password from standard input: %w", err)
		}
		password := strings.TrimRight(line, "\r\n")
		if password == "" {
			return "", cliutil.Usagef("login: --password-stdin: standard input holds no password")
		}
		return password, nil
	}
	fd := int(os.Stdin.Fd())
	if !term.IsTerminal(fd) {
		return "", cliutil.Usagef("login: give the password with --password-stdin (standard input is not a terminal to ask on)")
	}
	fmt.Fprint(c.App.ErrWriter, "Password: ")
	pw, err := term.ReadPassword(fd)
	fmt.Fprintln(c.App.ErrWriter)
	if err != nil {
		return "", fmt.Errorf("read password: %w", err)
	}
	return string(pw), nil
}
