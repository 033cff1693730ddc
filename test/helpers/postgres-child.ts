import { postgresServer } from './postgres.js';

// `node postgres-child.js`: starts the tests' PostgreSQL as any test process does, prints
// {"pid","dir"} of its postmaster and waits for the test to kill it.

const { pid, dir } = await postgresServer();
process.stdout.write(`${JSON.stringify({ pid, dir })}\n`);
// Bounded: a child nobody kills ends on its own.
setTimeout(() => process.exit(3), 120_000);
