import type { Db } from './sql.js';
import type { UploadRow, Uploads } from './types.js';

const columns = 'uuid, repo, name, started_at, committing';

function normalized(row: UploadRow): UploadRow {
  return { ...row, started_at: Number(row.started_at) };
}

export class SqlUploads implements Uploads {
  constructor(private readonly db: Db) {}

  async create(row: Omit<UploadRow, 'committing'>): Promise<void> {
    await this.db.sql.run('INSERT INTO uploads (uuid, repo, name, started_at) VALUES ($1, $2, $3, $4)', [row.uuid, row.repo, row.name, row.started_at]);
  }

  async get(uuid: string): Promise<UploadRow | undefined> {
    const row = await this.db.sql.get<UploadRow>(`SELECT ${columns} FROM uploads WHERE uuid = $1`, [uuid]);
    return row && normalized(row);
  }

  async committing(uuid: string, digest: string): Promise<void> {
    await this.db.sql.run('UPDATE uploads SET committing = $2 WHERE uuid = $1', [uuid, digest]);
  }

  async remove(uuid: string): Promise<void> {
    await this.db.sql.run('DELETE FROM uploads WHERE uuid = $1', [uuid]);
  }

  async all(): Promise<UploadRow[]> {
    return (await this.db.sql.all<UploadRow>(`SELECT ${columns} FROM uploads ORDER BY uuid`)).map(normalized);
  }

  async lock(uuid: string, holder: string, until: number, now: number): Promise<boolean> {
    return (await this.db.sql.run(
      `INSERT INTO upload_locks (uuid, holder, expires_at) VALUES ($1, $2, $3)
       ON CONFLICT (uuid) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at WHERE upload_locks.expires_at < $4`,
      [uuid, holder, until, now],
    )) === 1;
  }

  async renewLock(uuid: string, holder: string, until: number): Promise<void> {
    await this.db.sql.run('UPDATE upload_locks SET expires_at = $3 WHERE uuid = $1 AND holder = $2', [uuid, holder, until]);
  }

  async unlock(uuid: string, holder: string): Promise<void> {
    await this.db.sql.run('DELETE FROM upload_locks WHERE uuid = $1 AND holder = $2', [uuid, holder]);
  }

  async startedBefore(time: number, limit: number): Promise<UploadRow[]> {
    return (await this.db.sql.all<UploadRow>(`SELECT ${columns} FROM uploads WHERE started_at < $1 ORDER BY started_at LIMIT $2`, [time, limit])).map(normalized);
  }
}
