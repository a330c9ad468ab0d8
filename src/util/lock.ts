/**
 * The execution lock of a config folder (`cluster.lock`): one daemon or state command at a time.
 *
 * The lock is an exclusive `flock` on the file, which the operating system drops when its holder
 * exits in any way (`kill -9`, a crash, a power cut), so a lock can never outlive its owner and
 * nothing has to guess whether an old PID still runs (a PID can be reused, a zombie looks alive,
 * and reading `/proc` needs a permission the daemon's task does not grant). The PID written into
 * the file is only information for the message another process prints.
 *
 * The file stays in place on release: removing it would let a process that opened the old file
 * and one that creates a new one both hold "the" lock.
 *
 * @example
 * ```ts
 * const lock = await acquireLock(dir)
 * try { … } finally { await lock.release() }
 * ```
 */
import { join } from 'node:path'
import { ClusterError } from '../errors.ts'

/** A held lock. */
export interface FolderLock {
  path: string
  /** Unlocks (idempotent). */
  release(): Promise<void>
}

/** Raised when another process holds the lock. */
export class LockedError extends ClusterError {
  override name = 'LockedError'
}

/** Takes the lock in `dir`, or throws LockedError naming the holder's PID when it is known. */
export async function acquireLock(
  dir: string,
  program = 'ipfs-cluster-service',
): Promise<FolderLock> {
  const path = join(dir, 'cluster.lock')
  const file = await Deno.open(path, { read: true, write: true, create: true })
  let locked = false
  try {
    locked = await file.tryLock(true)
    if (!locked) {
      const pid = parseInt(await readAll(file), 10)
      const holder = Number.isInteger(pid) && pid > 0 ? `process ${pid}` : 'another process'
      throw new LockedError(
        `lock ${path} is held by ${holder}: another ${program} (or a state command) is using ` +
          `this folder. Stop it first, or use another folder with --config.`,
      )
    }
    await file.truncate(0)
    await file.write(new TextEncoder().encode(String(Deno.pid)))
  } catch (err) {
    if (locked) await file.unlock().catch(() => {})
    file.close()
    throw err
  }
  let released = false
  return {
    path,
    async release() {
      if (released) return
      released = true
      try {
        await file.truncate(0)
        await file.unlock()
      } finally {
        file.close()
      }
    },
  }
}

async function readAll(file: Deno.FsFile): Promise<string> {
  await file.seek(0, Deno.SeekMode.Start)
  const buf = new Uint8Array(32)
  const n = await file.read(buf)
  return new TextDecoder().decode(buf.subarray(0, n ?? 0)).trim()
}
