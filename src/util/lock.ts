/**
 * The execution lock of a config folder (`cluster.lock`): one daemon or state command at a time.
 * The file holds the owner's PID; a lock whose owner no longer runs is stale and taken over, so a
 * `kill -9` never leaves a folder locked for good.
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
  release(): Promise<void>
}

/** Raised when another live process holds the lock. */
export class LockedError extends ClusterError {
  override name = 'LockedError'
}

function alive(pid: number): boolean {
  if (pid === Deno.pid) return true
  try {
    Deno.statSync(`/proc/${pid}`)
    return true
  } catch (err) {
    // Without /proc (or permission to read it) we cannot tell: assume the owner lives.
    return !(err instanceof Deno.errors.NotFound)
  }
}

/** Takes the lock in `dir`, or throws LockedError with the reference's advice. */
export async function acquireLock(
  dir: string,
  program = 'ipfs-cluster-service',
): Promise<FolderLock> {
  const path = join(dir, 'cluster.lock')
  for (let attempt = 0; attempt < 2; attempt++) {
    // Write the PID to a private file, then link it into place: link(2) is atomic and fails if
    // the lock exists, so nobody ever sees a lock file without its PID in it.
    const tmp = `${path}.${Deno.pid}.tmp`
    await Deno.writeTextFile(tmp, String(Deno.pid))
    try {
      await Deno.link(tmp, path)
      await Deno.remove(tmp).catch(() => {})
      let released = false
      return {
        path,
        async release() {
          if (released) return
          released = true
          await Deno.remove(path).catch(() => {})
        },
      }
    } catch (err) {
      await Deno.remove(tmp).catch(() => {})
      if (!(err instanceof Deno.errors.AlreadyExists)) throw err
      const pid = parseInt(await Deno.readTextFile(path).catch(() => ''), 10)
      if (Number.isInteger(pid) && pid > 0 && alive(pid)) {
        throw new LockedError(
          `lock ${path} is held by process ${pid}. If no other ${program} process is running, ` +
            `remove ${path}, or make sure that the config folder is writable for the user ` +
            `running ${program}.`,
        )
      }
      await Deno.remove(path).catch(() => {})
    }
  }
  throw new LockedError(`cannot acquire ${path}`)
}
