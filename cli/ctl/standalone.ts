/**
 * Runs ipfs-cluster-ctl on its own (without the cli/main.ts dispatcher), e.g. for compatibility
 * tests: `deno run -A cli/ctl/standalone.ts --host /ip4/127.0.0.1/tcp/9094 id`.
 *
 * @example
 * ```sh
 * deno run --allow-net --allow-read --allow-env cli/ctl/standalone.ts pin ls
 * ```
 */
import { ctlMain } from './main.ts'

if (import.meta.main) {
  const enc = new TextEncoder()
  const write = (f: typeof Deno.stdout) => async (s: string) => {
    const bytes = enc.encode(s)
    for (let off = 0; off < bytes.length;) off += await f.write(bytes.subarray(off))
  }
  const code = await ctlMain(Deno.args, {
    stdout: write(Deno.stdout),
    stderr: write(Deno.stderr),
    env: Deno.env.toObject(),
    stdin: Deno.stdin.readable,
    stderrIsTerminal: Deno.stderr.isTerminal(),
  })
  Deno.exit(code)
}
