package main

import (
	"regexp"
	"sync"
)

// secretKeys are the keys whose values a redaction removes, as a regular
// expression alternation.
const secretKeys = `password|passwd|secret|client_secret|token|access_token|refresh_token|id_token|identitytoken|registrytoken|auth|apikey|api_key|private_key|privatekey`

// redacted replaces what a redaction removed.
const redacted = "[REDACTED]"

// redactions remove secrets from text bound for a support bundle: private
// keys' PEM blocks, the values of keys that name secrets (in YAML, JSON and
// logfmt), HTTP credentials and the user info of URLs. The bundle never
// reads the files that hold secrets (registry credentials, keys); this is
// for secrets that reach logs, configs or metrics by mistake. They are
// compiled on first use: every other command would pay for them at start.
var redactions = sync.OnceValue(func() []redaction {
	return []redaction{
		{regexp.MustCompile(`(?s)-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----.*?(-----END [A-Z0-9 ]*PRIVATE KEY-----|\z)`), redacted + " private key"},
		// A JSON document inside a JSON string (an error quoting a reply) has
		// its quotes escaped, and keeps them.
		{regexp.MustCompile(`(?i)(\\"(?:` + secretKeys + `)\\"\s*:\s*)\\"(?:[^"\\]|\\[^"])*\\"`), "${1}\\\"" + redacted + "\\\""},
		// "password": "…", password: …, password=…, with the key quoted or not.
		{regexp.MustCompile(`(?i)("?\b(?:` + secretKeys + `)"?\s*[:=]\s*)("(?:[^"\\]|\\.)*"|'[^']*'|[^\s,}\]\\"]+)`), "${1}\"" + redacted + "\""},
		{regexp.MustCompile(`(?i)\b(authorization\s*[:=]\s*"?(?:bearer|basic|token)\s+)[^\s"]+`), "${1}" + redacted},
		{regexp.MustCompile(`(?i)\b(bearer\s+)[A-Za-z0-9._~+/=-]{8,}`), "${1}" + redacted},
		{regexp.MustCompile(`\b([a-zA-Z][a-zA-Z0-9+.-]*://)[^/\s:@"']+:[^/\s@"']*@`), "${1}" + redacted + "@"},
	}
})

// redaction replaces what re matches with repl.
type redaction struct {
	re   *regexp.Regexp
	repl string
}

// redact returns b with every redaction applied, and how many it made.
func redact(b []byte) ([]byte, int) {
	n := 0
	for _, r := range redactions() {
		b = r.re.ReplaceAllFunc(b, func(m []byte) []byte {
			n++
			return r.re.ReplaceAll(m, []byte(r.repl))
		})
	}
	return b, n
}
