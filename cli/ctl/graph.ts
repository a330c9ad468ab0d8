/**
 * `health graph`: the connectivity graph as the Graphviz dot text ipfs-cluster-ctl writes
 * (cmd/ipfs-cluster-ctl/graph.go with the go-dot writer): cluster peers `C<n>` (self, doubled
 * border) or `T<n>` (trusted), IPFS daemons `I<n>`, a dotted edge to a peer whose IPFS is missing.
 * The text ends with `}` and no newline, like the reference.
 *
 * @example
 * ```ts
 * makeDot(await client.graph(), false) // 'digraph cluster {\n/* The nodes … *\/ …}'
 * ```
 */
import type { ConnectGraph } from '../../src/api/rest/client.ts'
import { escapeControl as esc } from '../../src/util/escape.ts'
import { goSort } from './format_text.ts'

type NodeKind = 'self' | 'cluster' | 'trusted' | 'ipfs' | 'ipfsMissing'

interface Vertex {
  id: string
  label: string
  group: string
  color: string
  style: string
  colorscheme: string
  fontcolor: string
  fontname: string
  shape: string
  peripheries: number
}

function shorten(id: string): string {
  return id.slice(0, 2) + '*' + id.slice(-6)
}

function label(peername: string, id: string): string {
  return `< <B> ${esc(peername)} </B> <BR/> <B> ${esc(id)} </B> >`
}

/** go-dot's VertexDescription.Write: non-empty attributes in field order. */
function vertexLine(v: Vertex): string {
  let s = `${v.id} [`
  const attrs: [string, string | number][] = [
    ['label', v.label],
    ['group', v.group],
    ['color', v.color],
    ['style', v.style],
    ['colorscheme', v.colorscheme],
    ['fontcolor', v.fontcolor],
    ['fontname', v.fontname],
    ['shape', v.shape],
    ['peripheries', v.peripheries],
  ]
  for (const [name, value] of attrs) {
    if (typeof value === 'number') {
      if (value !== 0) s += `${name}="${value}" `
    } else if (value !== '') {
      s += value[0] === '<' ? `${name}=${value} ` : `${name}="${value}" `
    }
  }
  return s + ']'
}

/** Renders the graph; `allIpfs` also draws IPFS swarm peers outside the cluster. */
export function makeDot(cg: ConnectGraph, allIpfs: boolean): string {
  const ipfsLinks = cg.ipfs_links ?? {}
  const ipfsEdges = new Map<string, string[]>()
  for (const [k, v] of Object.entries(ipfsLinks)) {
    ipfsEdges.set(k, [])
    for (const id of v ?? []) {
      if (id in ipfsLinks || allIpfs) ipfsEdges.get(k)!.push(id)
      if (allIpfs && !ipfsEdges.has(id)) ipfsEdges.set(id, [])
    }
  }
  const names = cg.id_to_peername ?? {}
  const trust = cg.cluster_trust_links ?? {}
  const clusterEdges = cg.cluster_links ?? {}
  const clusterToIpfs = cg.cluster_to_ipfs ?? {}
  const clusterNodes = new Map<string, Vertex>()
  const ipfsNodes = new Map<string, Vertex>()

  const addNode = (out: string[], id: string, kind: NodeKind) => {
    const v: Vertex = {
      id: '',
      label: '',
      group: id,
      color: '',
      style: 'filled',
      colorscheme: 'x11',
      fontcolor: 'black',
      fontname: 'Arial',
      shape: '',
      peripheries: 0,
    }
    switch (kind) {
      case 'self':
        Object.assign(v, { id: `C${clusterNodes.size}`, shape: 'box3d', color: 'orange' })
        Object.assign(v, { label: label(names[id] ?? '', shorten(id)), peripheries: 2 })
        clusterNodes.set(id, v)
        break
      case 'trusted':
        Object.assign(v, { id: `T${clusterNodes.size}`, shape: 'box3d', color: 'orange' })
        v.label = label(names[id] ?? '', shorten(id))
        clusterNodes.set(id, v)
        break
      case 'cluster':
        Object.assign(v, { id: `C${clusterNodes.size}`, shape: 'box3d', color: 'darkorange3' })
        v.label = label(names[id] ?? '', shorten(id))
        clusterNodes.set(id, v)
        break
      case 'ipfs':
        Object.assign(v, { id: `I${ipfsNodes.size}`, shape: 'cylinder', color: 'turquoise3' })
        v.label = label('IPFS', shorten(id))
        ipfsNodes.set(id, v)
        break
      case 'ipfsMissing':
        Object.assign(v, { id: `I${ipfsNodes.size}`, shape: 'cylinder', color: 'firebrick1' })
        v.label = label('IPFS', 'Errored')
        ipfsNodes.set(id, v)
        break
    }
    out.push(vertexLine(v))
  }

  const lines: string[] = []
  lines.push('/* The nodes of the connectivity graph */')
  lines.push('/* The cluster-service peers */')
  const sortedCluster = goSort(Object.keys(clusterEdges))
  const clusterSub: string[] = []
  for (const k of sortedCluster) {
    addNode(clusterSub, k, k === cg.cluster_id ? 'self' : trust[k] ? 'trusted' : 'cluster')
  }
  lines.push('subgraph  {', 'rank="min"', ...clusterSub, '}')
  lines.push('')
  lines.push('/* The ipfs peers */')
  const ipfsSub: string[] = []
  const sortedIpfs = goSort([...ipfsEdges.keys()])
  for (const k of sortedIpfs) addNode(ipfsSub, k, 'ipfs')
  for (const k of sortedCluster) if (!(k in clusterToIpfs)) addNode(ipfsSub, k, 'ipfsMissing')
  lines.push('subgraph  {', 'rank="max"', ...ipfsSub, '}')
  lines.push('')
  lines.push('/* Edges representing active connections in the cluster */')
  lines.push('/* The connections among cluster-service peers */')
  for (const k of sortedCluster) {
    for (const id of clusterEdges[k] ?? []) {
      const from = clusterNodes.get(k)
      const to = clusterNodes.get(id)
      // Go would dereference a missing node and crash; skipping it is the sensible reading.
      if (from && to) lines.push(`${from.id} -> ${to.id}`)
    }
  }
  lines.push('')
  lines.push('/* The connections between cluster peers and their ipfs daemons */')
  for (const k of sortedCluster) {
    const from = clusterNodes.get(k)!
    const ipfsId = clusterToIpfs[k]
    if (ipfsId === undefined) {
      const to = ipfsNodes.get(k)
      if (to) lines.push(`${from.id} -> ${to.id} [ style="dotted" ]`)
      continue
    }
    const to = ipfsNodes.get(ipfsId)
    if (to) lines.push(`${from.id} -> ${to.id}`)
  }
  lines.push('')
  lines.push('/* The swarm peer connections among ipfs daemons in the cluster */')
  for (const k of sortedIpfs) {
    const from = ipfsNodes.get(k)!
    for (const id of ipfsEdges.get(k) ?? []) {
      const to = ipfsNodes.get(id)
      if (to) lines.push(`${from.id} -> ${to.id}`)
    }
  }
  return 'digraph cluster {\n' + lines.map((l) => l + '\n').join('') + '}'
}
