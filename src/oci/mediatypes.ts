// Media types from the OCI image-spec (media-types.md) and Docker's image manifest v2 schema 2.

export const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
export const OCI_INDEX = 'application/vnd.oci.image.index.v1+json';
export const OCI_EMPTY = 'application/vnd.oci.empty.v1+json';
export const DOCKER_MANIFEST = 'application/vnd.docker.distribution.manifest.v2+json';
export const DOCKER_MANIFEST_LIST = 'application/vnd.docker.distribution.manifest.list.v2+json';
export const DOCKER_SCHEMA1 = 'application/vnd.docker.distribution.manifest.v1+json';
export const DOCKER_SCHEMA1_SIGNED = 'application/vnd.docker.distribution.manifest.v1+prettyjws';
export const DOCKER_FOREIGN_LAYER = 'application/vnd.docker.image.rootfs.foreign.diff.tar.gzip';

export const indexTypes: ReadonlySet<string> = new Set([OCI_INDEX, DOCKER_MANIFEST_LIST]);
export const imageTypes: ReadonlySet<string> = new Set([OCI_MANIFEST, DOCKER_MANIFEST]);
export const schema1Types: ReadonlySet<string> = new Set([DOCKER_SCHEMA1, DOCKER_SCHEMA1_SIGNED]);

/** What a registry client asks for to get any manifest, lists first (as Docker Hub expects). */
export const manifestAcceptHeader = [OCI_INDEX, DOCKER_MANIFEST_LIST, DOCKER_MANIFEST, OCI_MANIFEST].join(', ');
