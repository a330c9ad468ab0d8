/**
 * Writes packaging/import_map.json, the import map that `deno run` from a URL needs: Deno reads
 * no deno.json beside a remote module (`--config` takes only a local file), so the bare imports
 * (`multiformats/bases/base58`) resolve only through `--import-map=<url>/packaging/import_map.json`.
 * deno.json's `imports` can serve as an import map as they are, except for one thing: inside a
 * deno.json, `"pkg": "npm:pkg@1.2.3"` also maps the subpaths `pkg/…`, and an import map does
 * not, so each npm entry gets its `pkg/` twin here. deno.json stays the one list to edit; a test
 * (test/packaging/files.test.ts) fails when this file is older than it.
 *
 * @example
 * ```sh
 * deno task import-map   # after changing deno.json's imports
 * ```
 */

/** The import map of deno.json's `imports`, with the `pkg/` subpath entries deno.json implies. */
export function importMapOf(imports: Record<string, string>): { imports: Record<string, string> } {
  const out: Record<string, string> = {}
  for (const [key, target] of Object.entries(imports)) {
    out[key] = target
    const npm = /^npm:(?!\/)(.+)$/.exec(target)
    if (npm && !key.endsWith('/') && !(`${key}/` in imports)) out[`${key}/`] = `npm:/${npm[1]}/`
  }
  return { imports: out }
}

/** The text of packaging/import_map.json for the text of deno.json. */
export function importMapText(denoJson: string): string {
  const cfg = JSON.parse(denoJson) as { imports?: Record<string, string> }
  return JSON.stringify(importMapOf(cfg.imports ?? {}), null, 2) + '\n'
}

if (import.meta.main) {
  const root = new URL('..', import.meta.url)
  const text = importMapText(await Deno.readTextFile(new URL('deno.json', root)))
  await Deno.writeTextFile(new URL('packaging/import_map.json', root), text)
}
