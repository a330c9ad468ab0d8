/**
 * The process's soft limit on open file descriptors (RLIMIT_NOFILE, `ulimit -n`), which the HTTP
 * APIs size their connection cap from.
 *
 * Deno has no API for it, and reading `/proc/self/limits` needs `--allow-all` (Deno gates all of
 * /proc behind it), which the deno.json tasks do not grant. So: `getrlimit(2)` from the C library
 * when `--allow-ffi` is granted (the service task grants it), else `/proc/self/limits` when it
 * can be read, else undefined. Permissions are queried first, so nothing ever prompts.
 *
 * @example
 * ```ts
 * softOpenFilesLimit() // 1024, Infinity (unlimited) or undefined (unknown)
 * ```
 */

/** Linux and macOS: where getrlimit lives and the number of RLIMIT_NOFILE. */
const LIBC: Partial<Record<typeof Deno.build.os, { path: string; nofile: number }>> = {
  linux: { path: 'libc.so.6', nofile: 7 },
  darwin: { path: '/usr/lib/libSystem.B.dylib', nofile: 8 },
}

/** `RLIM_INFINITY` as the u64 getrlimit writes (all bits set on Linux; 2^63 - 1 on macOS). */
const INFINITY_FROM = 1n << 62n

function granted(desc: Deno.PermissionDescriptor): boolean {
  try {
    return Deno.permissions.querySync(desc).state === 'granted'
  } catch {
    return false
  }
}

function viaGetrlimit(): number | undefined {
  const libc = LIBC[Deno.build.os]
  if (!libc || !granted({ name: 'ffi' })) return
  try {
    const lib = Deno.dlopen(libc.path, {
      getrlimit: { parameters: ['i32', 'buffer'], result: 'i32' },
    })
    try {
      const lim = new BigUint64Array(2) // { rlim_cur, rlim_max }
      if (lib.symbols.getrlimit(libc.nofile, lim) !== 0) return
      return lim[0] >= INFINITY_FROM ? Infinity : Number(lim[0])
    } finally {
      lib.close()
    }
  } catch {
    return
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
  return viaGetrlimit() ?? viaProc()
}
