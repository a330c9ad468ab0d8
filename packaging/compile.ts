/**
 * `deno task compile [target…]`: standalone binaries of cli/main.ts for Linux (x64, arm64), macOS
 * (x64, arm64) and Windows (x64) in dist/, one `deno compile --target` each. A binary holds its
 * permissions, so it gets exactly the `deno task service` flags (a test compares them) plus
 * `--unstable-net`, which the systemd readiness message needs (cli/service/sd_notify.ts), and the
 * import worker, which `deno compile` leaves out unless `--include`d (src/state/import_parse.ts
 * starts it by URL). `deno compile` downloads Deno's runtime for each target from dl.deno.land,
 * so this needs that network; a binary picks its mode from its name when linked as
 * `ipfs-cluster-service`, `ipfs-cluster-ctl` or `ipfs-cluster-follow`.
 *
 * @example
 * ```sh
 * deno task compile                 # all five
 * deno task compile linux-x64       # one: dist/ipfs-cluster-linux-x64
 * ```
 */

/** The targets by short name: Deno's target triple. */
export const TARGETS: Record<string, string> = {
  'linux-x64': 'x86_64-unknown-linux-gnu',
  'linux-arm64': 'aarch64-unknown-linux-gnu',
  'macos-x64': 'x86_64-apple-darwin',
  'macos-arm64': 'aarch64-apple-darwin',
  'windows-x64': 'x86_64-pc-windows-msvc',
}

/** The permissions and V8 flags of `deno task service` (test/packaging/files.test.ts checks). */
export const SERVICE_FLAGS = [
  '--allow-net',
  '--allow-read',
  '--allow-write',
  '--allow-env',
  '--allow-sys',
  '--v8-flags=--max-semi-space-size=8',
]

/** The `deno` arguments that compile one target (deno.json's `unstable` list applies as well). */
export function compileArgs(name: string): string[] {
  const target = TARGETS[name]
  if (!target) {
    throw new Error(`unknown target ${name}: one of ${Object.keys(TARGETS).join(', ')}`)
  }
  return [
    'compile',
    '--quiet',
    ...SERVICE_FLAGS,
    '--unstable-net',
    '--include',
    'src/state/import_worker.ts',
    '--target',
    target,
    '--output',
    `dist/ipfs-cluster-${name}${name.startsWith('windows') ? '.exe' : ''}`,
    'cli/main.ts',
  ]
}

if (import.meta.main) {
  const names = Deno.args.length > 0 ? Deno.args : Object.keys(TARGETS)
  for (const name of names) {
    let args: string[]
    try {
      args = compileArgs(name)
    } catch (err) {
      console.error((err as Error).message)
      Deno.exit(2)
    }
    console.error(`deno ${args.join(' ')}`)
    const { code } = await new Deno.Command(Deno.execPath(), { args }).spawn().status
    if (code !== 0) {
      console.error(`compiling ${name} failed (deno compile needs dl.deno.land for the runtime)`)
      Deno.exit(code)
    }
  }
}
