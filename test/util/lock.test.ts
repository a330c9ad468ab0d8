import assert from 'node:assert/strict'
import { join } from 'node:path'
import { acquireLock, LockedError } from '../../src/util/lock.ts'

async function withDir(fn: (dir: string) => Promise<void>) {
  const dir = await Deno.makeTempDir()
  try {
    await fn(dir)
  } finally {
    await Deno.remove(dir, { recursive: true })
  }
}

const LOCK_MODULE = new URL('../../src/util/lock.ts', import.meta.url).href

/**
 * Another process that takes the lock of `dir` and then waits forever (only the permissions the
 * lock needs: read and write the folder). Resolves once it holds the lock.
 */
async function holder(dir: string): Promise<Deno.ChildProcess> {
  const code = `import { acquireLock } from '${LOCK_MODULE}'
await acquireLock(${JSON.stringify(dir)})
console.log('locked')
await new Promise(() => setInterval(() => {}, 1000))`
  const child = new Deno.Command(Deno.execPath(), {
    args: ['eval', `--allow-read=${dir}`, `--allow-write=${dir}`, code],
    stdout: 'piped',
    stderr: 'inherit',
  }).spawn()
  const reader = child.stdout.getReader()
  const { value } = await reader.read()
  reader.releaseLock()
  assert.match(new TextDecoder().decode(value), /locked/)
  return child
}

Deno.test('a second acquire fails naming the holder; release is idempotent and frees it', () =>
  withDir(async (dir) => {
    const lock = await acquireLock(dir)
    assert.equal(lock.path, join(dir, 'cluster.lock'))
    assert.equal(await Deno.readTextFile(lock.path), String(Deno.pid))
    await assert.rejects(
      acquireLock(dir),
      (e: Error) =>
        e instanceof LockedError &&
        e.message ===
          `lock ${lock.path} is held by process ${Deno.pid}: another ipfs-cluster-service (or a ` +
            'state command) is using this folder. Stop it first, or use another folder with ' +
            '--config.',
    )
    await lock.release()
    await lock.release()
    const again = await acquireLock(dir, 'ipfs-cluster-follow')
    await again.release()
  }))

Deno.test('the program name appears in the message', () =>
  withDir(async (dir) => {
    const lock = await acquireLock(dir)
    try {
      await assert.rejects(acquireLock(dir, 'other-prog'), /another other-prog \(or/)
    } finally {
      await lock.release()
    }
  }))

Deno.test('a lock file left by a dead process, or holding garbage, locks nothing', () =>
  withDir(async (dir) => {
    const path = join(dir, 'cluster.lock')
    // PID 99999999 cannot exist; the file alone (no OS lock on it) must not block anyone.
    await Deno.writeTextFile(path, '99999999')
    const lock = await acquireLock(dir)
    assert.equal(await Deno.readTextFile(path), String(Deno.pid))
    await lock.release()
    await Deno.writeTextFile(path, 'garbage')
    const lock2 = await acquireLock(dir)
    await lock2.release()
  }))

Deno.test('a lock held by another live process is respected, and freed by its kill -9', () =>
  withDir(async (dir) => {
    const child = await holder(dir)
    try {
      await assert.rejects(acquireLock(dir), new RegExp(`held by process ${child.pid}:`))
    } finally {
      child.kill('SIGKILL')
      await child.status
    }
    // The operating system dropped the lock with the process: no stale lock to clean up.
    const lock = await acquireLock(dir)
    await lock.release()
  }))

Deno.test('a folder that does not exist is an error, not a lock', async () => {
  await assert.rejects(acquireLock('/nonexistent/for/sure'), Deno.errors.NotFound)
})
