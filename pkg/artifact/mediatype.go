package artifact

// Media types of bpfd's bytecode artifact, specified in docs/artifact-spec.md.
const (
	// ArtifactType is the artifactType of a bytecode manifest, and of an
	// index of per-platform bytecode manifests.
	ArtifactType = "application/vnd.bpfd.bytecode.v1"
	// MediaTypeConfig is the media type of the config blob: the JSON Config
	// extracted from the objects.
	MediaTypeConfig = "application/vnd.bpfd.bytecode.config.v1+json"
	// MediaTypeObject is the media type of a layer holding one BPF ELF
	// object file, byte for byte.
	MediaTypeObject = "application/vnd.bpfd.bytecode.object.v1"
)

// Media types of the container images bpfman reads (built by podman or
// docker), which this package reads too.
const (
	mediaTypeDockerManifest     = "application/vnd.docker.distribution.manifest.v2+json"
	mediaTypeDockerManifestList = "application/vnd.docker.distribution.manifest.list.v2+json"
	mediaTypeDockerConfig       = "application/vnd.docker.container.image.v1+json"
	mediaTypeDockerLayerGzip    = "application/vnd.docker.image.rootfs.diff.tar.gzip"
)

// Format names the kind of image an artifact was read from.
type Format string

const (
	// FormatBpfd is bpfd's bytecode artifact (ArtifactType).
	FormatBpfd Format = "bpfd"
	// FormatBpfman is a bpfman bytecode image: a container image whose config
	// labels io.ebpf.programs and io.ebpf.maps describe the object in its
	// layer.
	FormatBpfman Format = "bpfman"
)
