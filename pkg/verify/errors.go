package verify

import "errors"

// Errors wrapped, with the identity of the thing, by this package. A trust
// policy's denial is not among them: it is a *DenialError.
var (
	// ErrInvalidKey: a key file holds no key, or not one of a kind cosign
	// writes.
	ErrInvalidKey = errors.New("invalid key")
	// ErrWrongPassword: an encrypted private key did not decrypt with the
	// password given.
	ErrWrongPassword = errors.New("wrong password for the private key")
	// ErrInvalidPolicy: a trust policy file does not parse or validate; the
	// error is a *PolicyError listing every problem.
	ErrInvalidPolicy = errors.New("invalid trust policy")
	// ErrInvalidCertificate: a signing certificate does not parse or does not
	// belong to the signing key.
	ErrInvalidCertificate = errors.New("invalid certificate")
	// ErrTooManySignatures: an artifact carries more signature manifests or
	// layers than a verifier reads.
	ErrTooManySignatures = errors.New("too many signatures")
)
