// Package scctest evaluates pod specs against OpenShift
// SecurityContextConstraints the way OpenShift's SCC admission does, for the
// rules bpfd's pods rely on, so that tests can prove every container bpfd
// ships is admitted by the SCC meant for it, and refused by a narrower one.
// It is test support, not an admission controller: where OpenShift would
// fill in a value (a uid from the namespace's range, the SCC's SELinux
// options, a seccomp profile, a dropped capability) Admit reports the value
// assigned, and any pod field it does not model is a violation, so a pod can
// never pass because the model is silent about it.
package scctest
