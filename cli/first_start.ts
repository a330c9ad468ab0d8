/**
 * The one line a first `deno task start` (or `task service`, `task ctl`) prints. Those tasks run
 * `deno install --quiet` before the program (deno.json sets `nodeModulesDir: "manual"`, so no
 * other command installs on its own and prints a line per package), and this script runs first:
 * when the folder has no node_modules yet, it says what the next minute is for. It imports
 * nothing, so it runs at once on a machine where nothing is cached.
 *
 * @example
 * ```sh
 * deno run --quiet --allow-read=node_modules cli/first_start.ts   # in the repository root
 * ```
 */

/** What a first start prints (on stderr). */
export const FIRST_START_LINE = "ipfs-cluster: first start here: installing the peer's npm " +
  'dependencies into node_modules (a minute or two; later starts skip this)…'

/** The line to print for a repository folder: FIRST_START_LINE when it has no node_modules yet. */
export function firstStartLine(repo: string): string | undefined {
  try {
    Deno.statSync(`${repo}/node_modules/.deno`)
    return undefined
  } catch {
    return FIRST_START_LINE
  }
}

if (import.meta.main) {
  const line = firstStartLine('.')
  if (line) console.error(line)
}
