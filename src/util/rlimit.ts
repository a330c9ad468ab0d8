/**
 * How many file descriptors this process may open, which the HTTP APIs size their connection cap
 * from.
 *
 * Deno has no API for the limit (RLIMIT_NOFILE, `ulimit -n`), and reading `/proc/self/limits`
 * needs `--allow-all` (Deno gates all of /proc behind it), which the deno.json tasks do not grant.
 * So `softOpenFilesLimit()` reads /proc when it may (under `-A`), and `openFilesHeadroom()`
 * counts how many more descriptors can be opened right now, by opening `/dev/null` (which only
 * needs read access to it) until the count or the limit is reached, and closing them again.
 * Permissions are queried first, so nothing ever prompts.
 *
 * @example
 * ```ts
 * softOpenFilesLimit() // 1024, Infinity (unlimited) or undefined (unknown)
 * openFilesHeadroom(4096) // 4096 (at least that many are free), 180, or undefined (not allowed)
 * ```
 */

function granted(desc: Deno.PermissionDescriptor): boolean {
  try {
    return Deno.permissions.querySync(desc).state === 'granted'
  } catch {
    return false
  }
}

/**
 * The soft "Max open files" limit from the text of /proc/self/limits: a number, Infinity for
 * `unlimited`, undefined when the line is missing.
 */
export function parseSoftNofile(limits: string): number | undefined {
  const m = /^Max open files\s+(\S+)/m.exec(limits)
  if (!m) return undefined
  if (m[1] === 'unlimited') return Infinity
  return /^\d+$/.test(m[1]) ? Number(m[1]) : undefined
}

function viaProc(): number | undefined {
  const path = '/proc/self/limits'
  if (!granted({ name: 'read', path })) return
  try {
    return parseSoftNofile(Deno.readTextFileSync(path))
  } catch {
    return
  }
}

/** The soft open-files limit of this process: a number, Infinity, or undefined if unknown. */
export function softOpenFilesLimit(): number | undefined {
  return viaProc()
}

/**
 * How many more descriptors this process can open now, up to `max` (counted by opening
 * `/dev/null` that many times at most, then closing them all; ~15 µs each); undefined without
 * read access to /dev/null. Synchronous, so no other JavaScript runs while they are held.
 */
export function openFilesHeadroom(max: number): number | undefined {
  if (Deno.build.os === 'windows' || !granted({ name: 'read', path: '/dev/null' })) return
  const held: Deno.FsFile[] = []
  try {
    while (held.length < max) held.push(Deno.openSync('/dev/null'))
  } catch {
    // the limit (or another failure to open): what was opened is the headroom
  } finally {
    for (const f of held) f.close()
  }
  return held.length
}
