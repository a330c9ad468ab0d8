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

/** The PID of a process that has exited (a stale lock owner). */
async function deadPid(): Promise<number> {
  const child = new Deno.Command('true', { stdout: 'null', stderr: 'null' }).spawn()
  await child.status
  return child.pid
}

Deno.test('the lock file holds our PID; a second acquire fails with the advice', () =>
  withDir(async (dir) => {
    const lock = await acquireLock(dir)
    assert.equal(lock.path, join(dir, 'cluster.lock'))
    assert.equal(await Deno.readTextFile(lock.path), String(Deno.pid))
    await assert.rejects(
      acquireLock(dir),
      (e: Error) =>
        e instanceof LockedError &&
        e.message ===
          `lock ${lock.path} is held by process ${Deno.pid}. If no other ipfs-cluster-service ` +
            `process is running, remove ${lock.path}, or make sure that the config folder is ` +
            'writable for the user running ipfs-cluster-service.',
    )
    await lock.release()
    await lock.release()
    await assert.rejects(Deno.stat(lock.path), Deno.errors.NotFound)
    const again = await acquireLock(dir, 'ipfs-cluster-follow')
    await again.release()
  }))

Deno.test('the program name appears in the message', () =>
  withDir(async (dir) => {
    const lock = await acquireLock(dir)
    try {
      await assert.rejects(acquireLock(dir, 'other-prog'), /no other other-prog process/)
    } finally {
      await lock.release()
    }
  }))

Deno.test('a stale lock (owner PID dead) and an unreadable one are taken over', () =>
  withDir(async (dir) => {
    const path = join(dir, 'cluster.lock')
    await Deno.writeTextFile(path, String(await deadPid()))
    const lock = await acquireLock(dir)
    assert.equal(await Deno.readTextFile(path), String(Deno.pid))
    await lock.release()
    await Deno.writeTextFile(path, 'garbage')
    const lock2 = await acquireLock(dir)
    await lock2.release()
  }))

Deno.test('a lock held by another live process is respected', () =>
  withDir(async (dir) => {
    const child = new Deno.Command('sleep', { args: ['30'] }).spawn()
    try {
      await Deno.writeTextFile(join(dir, 'cluster.lock'), String(child.pid))
      await assert.rejects(acquireLock(dir), new RegExp(`held by process ${child.pid}\\.`))
    } finally {
      child.kill('SIGKILL')
      await child.status
    }
  }))

Deno.test('a folder that does not exist is an error, not a lock', async () => {
  await assert.rejects(acquireLock('/nonexistent/for/sure'), Deno.errors.NotFound)
})
