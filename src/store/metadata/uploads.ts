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

  async startedBefore(time: number, limit: number): Promise<UploadRow[]> {
    return (await this.db.sql.all<UploadRow>(`SELECT ${columns} FROM uploads WHERE started_at < $1 ORDER BY started_at LIMIT $2`, [time, limit])).map(normalized);
  }
}
