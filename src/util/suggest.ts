/**
 * "Did you mean …": the candidate closest to a misspelt word, by edit distance.
 *
 * @example
 * ```ts
 * closest('peer_name', ['peername', 'secret']) // 'peername'
 * closest('zzz', ['peername', 'secret'])        // undefined (nothing close enough)
 * ```
 */

/**
 * Edit distance (insert, delete, substitute, or swap two neighbours; each costs 1: the optimal
 * string alignment form of Damerau–Levenshtein), case-insensitive.
 */
export function editDistance(a: string, b: string): number {
  a = a.toLowerCase()
  b = b.toLowerCase()
  let before: number[] = []
  let prev = Array.from({ length: b.length + 1 }, (_, i) => i)
  for (let i = 1; i <= a.length; i++) {
    const row = [i]
    for (let j = 1; j <= b.length; j++) {
      let d = Math.min(prev[j] + 1, row[j - 1] + 1, prev[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1))
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) {
        d = Math.min(d, before[j - 2] + 1)
      }
      row.push(d)
    }
    before = prev
    prev = row
  }
  return prev[b.length]
}

/**
 * The candidate nearest to `word`, or undefined when none is near enough to be a likely typo:
 * at most a third of the word's length (and at least 1, at most 3) edits away. Ties go to the
 * earlier candidate, so callers list the most likely ones first.
 */
export function closest(word: string, candidates: Iterable<string>): string | undefined {
  const limit = Math.min(3, Math.max(1, Math.floor(word.length / 3)))
  let best: string | undefined
  let bestDistance = limit + 1
  for (const c of candidates) {
    const d = editDistance(word, c)
    if (d < bestDistance) {
      best = c
      bestDistance = d
    }
  }
  return best
}
