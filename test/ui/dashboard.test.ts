/**
 * The dashboard in a real browser: headless Chromium (test/support/chromium.ts) drives `/ui` of a
 * three-peer cluster of our daemons, each beside its own real Kubo, all inside one loopback-only
 * network namespace (Chromium's own background requests go nowhere). From the page: pin a CID
 * and see it reach `pinned` on every peer; add a file and see its progress and its pin; page and
 * search a few hundred pins with only one page in the DOM; kill a peer and see its alert.
 *
 * `DASHBOARD_SCREENSHOTS=docs/ui` writes the main views' screenshots there (docs/dashboard.md).
 */
import assert from 'node:assert/strict'
import { join } from 'node:path'
import { CID } from 'multiformats/cid'
import { identity } from 'multiformats/hashes/identity'
import { type Page, startChromium } from '../support/chromium.ts'
import { netnsTest } from '../support/go_cluster.ts'
import { content, kuboCluster, quickTimings, waitAllReady } from '../e2e/cluster_support.ts'

const SHOTS = Deno.env.get('DASHBOARD_SCREENSHOTS')
const BULK = 300

async function shot(page: Page, name: string) {
  if (!SHOTS) return
  await Deno.mkdir(SHOTS, { recursive: true })
  await page.screenshot(join(SHOTS, `${name}.png`))
}

/** CIDs Kubo "has" without fetching anything: the identity hash holds the bytes. */
function bulkCid(i: number): string {
  return CID.createV1(0x55, identity.digest(new TextEncoder().encode(`ui-bulk-${i}`))).toString()
}

const rowsOf = (page: Page) =>
  page.evaluate<{ cid: string; name: string }[]>(
    `[...document.querySelectorAll('#pins-table tbody tr')].map((r) => ({
      cid: r.dataset.cid, name: r.children[1].textContent }))`,
  )

/** The statuses shown for a CID's row: peer ID → status. */
const statusesOf = (page: Page, cid: string) =>
  page.evaluate<Record<string, string>>(
    `Object.fromEntries([...document.querySelectorAll('#pins-table tr[data-cid="${cid}"] .chip')]
      .map((c) => [c.dataset.peer, c.dataset.status]))`,
  )

netnsTest(
  import.meta,
  "dashboard in Chromium: pin to PINNED, add with progress, paging and search, a dead peer's alert",
  async (t) => {
    const { cluster, kubos } = await kuboCluster(3, {
      edit(cfg) {
        quickTimings(cfg)
      },
    })
    const browser = await startChromium().catch(async (err) => {
      await cluster.close()
      throw err
    })
    try {
      cluster.startAll()
      await waitAllReady(cluster)
      const [p0, , p2] = cluster.peers
      const ids = cluster.peers.map((p) => p.id).sort()
      const page = await browser.newPage()
      const ui = `${p0.restUrl}/ui`

      await t.step('the peers view lists every peer with its IPFS daemon', async () => {
        await page.goto(`${ui}#peers`)
        await page.waitFor(
          `document.querySelectorAll('#peers-table tbody tr').length === 3`,
          30_000,
        )
        const shown = await page.evaluate<{ id: string; ipfs: string }[]>(
          `[...document.querySelectorAll('#peers-table tbody tr')].map((r) => ({
            id: r.dataset.peer, ipfs: r.children[3].textContent }))`,
        )
        assert.deepStrictEqual(shown.map((r) => r.id).sort(), ids)
        for (const k of kubos) assert(shown.some((r) => r.ipfs.includes(k.peerId)), k.peerId)
        await shot(page, 'peers')
      })

      await t.step('the graph view draws every peer, its IPFS daemon and the links', async () => {
        await page.goto(`${ui}#graph`)
        await page.waitFor(`document.querySelectorAll('#graph .node-peer').length === 3`, 30_000)
        const drawn = await page.evaluate<{ peers: string[]; ipfs: number; links: number }>(`({
          peers: [...document.querySelectorAll('#graph .node-peer')].map((g) => g.dataset.id),
          ipfs: document.querySelectorAll('#graph .node-ipfs').length,
          links: document.querySelectorAll('#graph .edge-cluster').length })`)
        assert.deepStrictEqual(drawn.peers.sort(), ids)
        assert.equal(drawn.ipfs, 3)
        assert.equal(drawn.links, 3) // a full mesh of three, each link drawn once
        await shot(page, 'graph')
      })

      await t.step('pin a CID from the page: its row reaches pinned on every peer', async () => {
        const cid = await content(kubos[1], 'dashboard pin')
        await page.goto(`${ui}#pins`)
        await page.waitFor(`document.body.dataset.view === 'pins'`, 10_000)
        await page.type('#pin-cid', cid)
        await page.type('#pin-name', 'from the page')
        await page.click('#pin-submit')
        await page.waitFor(`document.querySelector('#pins-table tr[data-cid="${cid}"]')`, 30_000)
        // The page refreshes the shown pins' statuses by itself (no reload, no click).
        await page.waitFor(
          `document.querySelectorAll('#pins-table tr[data-cid="${cid}"] .chip[data-status=pinned]')
            .length === 3`,
          90_000,
        )
        assert.deepStrictEqual(
          Object.keys(await statusesOf(page, cid)).sort(),
          ids,
        )
        const r = await cluster.request(p2, 'GET', `/allocations/${cid}`)
        assert.equal(JSON.parse(r.body).name, 'from the page')
      })

      await t.step('add a file from the page: progress, then its pin', async () => {
        const file = await Deno.makeTempFile({ suffix: '.bin' })
        const bytes = new Uint8Array(3 << 20)
        for (let i = 0; i < bytes.length; i += 65536) {
          crypto.getRandomValues(bytes.subarray(i, i + 65536))
        }
        await Deno.writeFile(file, bytes)
        try {
          await page.setFile('#add-file', file)
          await page.type('#add-name', 'uploaded')
          await page.click('#add-submit')
          await page.waitFor(
            `document.querySelector('#add-percent').textContent === 'added'`,
            60_000,
          )
          const log = await page.evaluate<string[]>(
            `[...document.querySelectorAll('#add-log li')].map((l) => l.textContent)`,
          )
          assert(log.length >= 1, 'no add output shown')
          const root = log.at(-1)!.split(' ')[1]
          assert.match(root, /^(Qm|baf)\w+$/)
          assert.equal(await page.evaluate(`document.querySelector('#add-progress').value`), 1)
          await page.waitFor(
            `document.querySelectorAll('#pins-table tr[data-cid="${root}"] .chip[data-status=pinned]')
              .length === 3`,
            90_000,
          )
          await shot(page, 'add')
        } finally {
          await Deno.remove(file)
        }
      })

      await t.step(`page and search ${BULK} pins: one page in the DOM`, async () => {
        const cids = Array.from({ length: BULK }, (_, i) => bulkCid(i))
        for (let i = 0; i < BULK; i += 10) {
          await Promise.all(
            cids.slice(i, i + 10).map(async (c, j) => {
              const name = (i + j) % 25 === 0 ? `holiday-photo-${i + j}` : `doc-${i + j}`
              const r = await cluster.request(p0, 'POST', `/pins/${c}?name=${name}`)
              assert.equal(r.status, 200, r.body)
            }),
          )
        }
        await page.type('#search-q', '')
        await page.click('#search-go')
        await page.waitFor(
          `document.querySelector('#pins-info').textContent.startsWith('page 1: 50')`,
          30_000,
        )
        const first = await rowsOf(page)
        assert.equal(first.length, 50)
        assert.deepStrictEqual(first.map((r) => r.cid), first.map((r) => r.cid).sort())
        await page.click('#pins-next')
        await page.waitFor(
          `document.querySelector('#pins-info').textContent.startsWith('page 2: 50')`,
          30_000,
        )
        const second = await rowsOf(page)
        assert.equal(second.length, 50)
        assert(second[0].cid > first[49].cid, 'page 2 does not follow page 1')
        await page.click('#pins-prev')
        await page.waitFor(
          `document.querySelector('#pins-info').textContent.startsWith('page 1:')`,
          30_000,
        )
        assert.deepStrictEqual((await rowsOf(page)).map((r) => r.cid), first.map((r) => r.cid))

        await page.type('#search-q', 'holiday-photo')
        await page.click('#search-go')
        await page.waitFor(
          `document.querySelector('#pins-info').textContent === 'page 1: 12 pins'`,
          30_000,
        )
        const found = await rowsOf(page)
        assert.deepStrictEqual(
          found.map((r) => r.name).sort(),
          Array.from({ length: BULK / 25 }, (_, k) => `holiday-photo-${k * 25}`).sort(),
        )
        await page.waitFor(
          `document.querySelectorAll('#pins-table tbody .chip[data-status=pinned]').length === 36`,
          90_000,
        )
        await shot(page, 'pins')
      })

      await t.step('a bad input is shown to the user', async () => {
        await page.type('#pin-cid', 'not-a-cid')
        await page.click('#pin-submit')
        const msg = await page.waitFor<string>(
          `[...document.querySelectorAll('#errors li')].map((l) => l.dataset.msg)
            .find((m) => m.startsWith('pin not-a-cid'))`,
          10_000,
        )
        assert.match(msg, /error decoding Cid.*\(HTTP 400\)/)
        await page.evaluate(
          `document.querySelectorAll('#errors li button').forEach((b) => b.click())`,
        )
      })

      await t.step('kill a peer: its alert shows on the metrics view', async () => {
        await page.goto(`${ui}#metrics`)
        await page.waitFor(
          `document.querySelectorAll('#metrics table[data-metric]').length > 0`,
          30_000,
        )
        await page.waitFor(
          `document.querySelectorAll('#metrics table[data-metric=ping] tbody tr').length === 3`,
          30_000,
        )
        assert.equal(
          await page.evaluate(`document.querySelectorAll('#alerts-table tbody tr').length`),
          0,
        )
        await cluster.kill9(p2)
        await page.waitFor(
          `document.querySelector('#alerts-table tr[data-peer="${p2.id}"][data-metric=ping]')`,
          60_000,
        )
        assert.equal(await page.evaluate(`document.querySelector('#alert-count').hidden`), false)
        await shot(page, 'metrics')
      })
      assert.deepStrictEqual(page.errors, [])
    } finally {
      await browser.close()
      await cluster.close()
    }
  },
)
