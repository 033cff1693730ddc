// Metadata schema. Manifests are content-addressed and shared (like blobs); what a repository
// holds is links: repository_manifests, repository_blobs and tags. `repo` is the repository
// key (docker-local), `name` the image inside it (team/app).
export const schema = `
CREATE TABLE IF NOT EXISTS repositories (
  key TEXT PRIMARY KEY,
  kind TEXT NOT NULL,
  created_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS manifests (
  digest TEXT PRIMARY KEY,
  media_type TEXT NOT NULL,
  size INTEGER NOT NULL,
  content BLOB NOT NULL,
  subject TEXT,
  artifact_type TEXT,
  annotations TEXT
);
CREATE INDEX IF NOT EXISTS manifests_subject ON manifests(subject) WHERE subject IS NOT NULL;
CREATE TABLE IF NOT EXISTS manifest_references (
  digest TEXT NOT NULL,
  target TEXT NOT NULL,
  kind TEXT NOT NULL CHECK (kind IN ('blob', 'manifest', 'foreign')),
  PRIMARY KEY (digest, target)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS manifest_references_target ON manifest_references(target);
CREATE TABLE IF NOT EXISTS repository_manifests (
  repo TEXT NOT NULL,
  name TEXT NOT NULL,
  digest TEXT NOT NULL,
  pushed_at INTEGER NOT NULL,
  pulled_at INTEGER,
  PRIMARY KEY (repo, name, digest)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS tags (
  repo TEXT NOT NULL,
  name TEXT NOT NULL,
  tag TEXT NOT NULL,
  digest TEXT NOT NULL,
  pushed_at INTEGER NOT NULL,
  -- remote repositories: when the upstream last confirmed this tag's digest
  checked_at INTEGER,
  PRIMARY KEY (repo, name, tag)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS repository_blobs (
  repo TEXT NOT NULL,
  name TEXT NOT NULL,
  digest TEXT NOT NULL,
  size INTEGER NOT NULL,
  linked_at INTEGER NOT NULL,
  pulled_at INTEGER,
  PRIMARY KEY (repo, name, digest)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS repository_blobs_digest ON repository_blobs(digest);
CREATE TABLE IF NOT EXISTS uploads (
  uuid TEXT PRIMARY KEY,
  repo TEXT NOT NULL,
  name TEXT NOT NULL,
  started_at INTEGER NOT NULL
);
`;
