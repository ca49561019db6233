//! Exchanges: improves a solution by changing the items of up to four classes at a time.
//!
//! A move changes one class's item. Each round applies the best change that fits the residual
//! capacity and gains, trying in turn:
//! - the best single move or pair of moves of different classes: with the moves sorted by
//!   weight change and the best three gains (of distinct classes) kept for every prefix, each
//!   move meets its best partner in `O(1)`, `O(n log n)` a round for `n` items;
//! - when no pair gains, triples: each of the `TRIPLE_FIRSTS` moves of best reduced gain
//!   (profit change less the capacity's dual price times the weight change) with the best pair
//!   of the other classes, among the moves whose reduced gain leaves a triple room to gain,
//!   `O(n)` each;
//! - when no triple gains, quadruples: two disjoint pairs among the `QUAD_MOVES` best, matched
//!   the same way over the sorted pairs.
//!
//! They find what a DP finds slowly when many solutions lie just below the bound: a few classes
//! trading weight so that the capacity fills exactly (`count::upper_bound`, or the LP bound's
//! floor for whole profits, says when that is the optimum).

use alloc::vec::Vec;

use pilot_core::MckpInstance;

/// The first moves of the triples tried in a round.
const TRIPLE_FIRSTS: usize = 64;

/// The moves whose pairs make the quadruples tried in a round.
const QUAD_MOVES: usize = 256;

/// The best pairs kept per prefix in the quadruple search (a partner pair must not share a
/// class with the first).
const QUAD_TOP: usize = 6;

/// One class's change of item: weight and profit against its current item.
#[derive(Clone, Copy, Debug)]
struct Move {
    dw: i64,
    dp: f64,
    class: u32,
    item: u32,
}

/// For a prefix of the sorted moves: the moves of the three largest gains, of distinct
/// classes, best first.
type Top = [Option<u32>; 3];

/// Inserts move `i` into `top` (best first, one per class).
fn insert(top: &mut Top, moves: &[Move], i: usize) {
    let m = moves[i];
    let (mut out, mut n, mut placed): (Top, usize, bool) = ([None; 3], 0, false);
    let mut push = |x: u32| {
        if n < 3 {
            out[n] = Some(x);
            n += 1;
        }
    };
    for &t in top.iter().flatten() {
        let old = moves[t as usize];
        if old.class == m.class {
            if old.dp >= m.dp {
                return;
            }
            continue;
        }
        if !placed && m.dp > old.dp {
            push(i as u32);
            placed = true;
        }
        push(t);
    }
    if !placed {
        push(i as u32);
    }
    *top = out;
}

/// The best entry of `top` whose class is none of `not`.
fn partner(top: &Top, moves: &[Move], not: &[u32]) -> Option<usize> {
    top.iter()
        .flatten()
        .map(|&t| t as usize)
        .find(|&t| !not.contains(&moves[t].class))
}

/// Two moves of different classes, as one.
#[derive(Clone, Copy, Debug)]
struct Pair {
    dw: i64,
    dp: f64,
    moves: [u32; 2],
}

/// The best four moves of distinct classes among `candidates` (indices into `moves`) that fit
/// `residual` and gain more than `tol`, as two pairs: the pairs sorted by weight change, the
/// `QUAD_TOP` best of every prefix kept, each pair matched with the best disjoint one that
/// fits beside it. `O(c² log c)` for `c` candidates.
fn best_quad(
    moves: &[Move],
    candidates: &[usize],
    residual: i64,
    tol: f64,
    pairs: &mut Vec<Pair>,
) -> Option<[usize; 4]> {
    pairs.clear();
    for (k, &a) in candidates.iter().enumerate() {
        for &b in &candidates[k + 1..] {
            let (x, y) = (moves[a], moves[b]);
            if x.class != y.class {
                pairs.push(Pair {
                    dw: x.dw + y.dw,
                    dp: x.dp + y.dp,
                    moves: [a as u32, b as u32],
                });
            }
        }
    }
    pairs.sort_unstable_by_key(|p| p.dw);
    let classes = |p: &Pair| p.moves.map(|m| moves[m as usize].class);
    let mut tops: Vec<[Option<u32>; QUAD_TOP]> = Vec::with_capacity(pairs.len());
    let mut top = [None; QUAD_TOP];
    for (i, p) in pairs.iter().enumerate() {
        if let Some(at) = top
            .iter()
            .position(|t: &Option<u32>| t.is_none_or(|t| pairs[t as usize].dp < p.dp))
        {
            top.copy_within(at..QUAD_TOP - 1, at + 1);
            top[at] = Some(i as u32);
        }
        tops.push(top);
    }
    let mut pick: Option<([usize; 4], f64)> = None;
    let mut k = pairs.len();
    for a in pairs.iter() {
        while k > 0 && pairs[k - 1].dw > residual - a.dw {
            k -= 1;
        }
        let Some(top) = k.checked_sub(1).map(|k| &tops[k]) else {
            break;
        };
        let own = classes(a);
        let partner = top
            .iter()
            .flatten()
            .map(|&t| &pairs[t as usize])
            .find(|b| classes(b).iter().all(|c| !own.contains(c)));
        if let Some(b) = partner
            && a.dp + b.dp > pick.map_or(tol, |p| p.1)
        {
            let m = [a.moves[0], a.moves[1], b.moves[0], b.moves[1]];
            pick = Some((m.map(|m| m as usize), a.dp + b.dp));
        }
    }
    pick.map(|p| p.0)
}

/// Improves `choice` (a feasible solution) by exchanges until a round gains nothing, its
/// value reaches `enough` or `rounds` rounds have run; returns its value and the rounds that
/// gained. `slope` is the dual price of capacity (the LP's), which ranks the moves for the
/// triples and quadruples; `tol` is the least gain that counts. Instances whose weights do
/// not fit in `i64` are left as they are.
pub(crate) fn improve(
    instance: &MckpInstance<'_>,
    choice: &mut [usize],
    enough: f64,
    rounds: usize,
    slope: f64,
    tol: f64,
) -> (f64, usize) {
    let Ok((mut value, mut weight)) = instance.evaluate(choice) else {
        return (f64::NEG_INFINITY, 0);
    };
    if weight > instance.capacity() || instance.weights().iter().any(|&w| w > i64::MAX as u64 / 2) {
        return (value, 0);
    }
    let mut gained = 0;
    let mut moves: Vec<Move> = Vec::with_capacity(instance.item_count());
    let mut tops: Vec<Top> = Vec::with_capacity(instance.item_count());
    let (mut pool, mut pool_tops): (Vec<Move>, Vec<Top>) = (Vec::new(), Vec::new());
    let (mut ranked, mut pairs): (Vec<usize>, Vec<Pair>) = (Vec::new(), Vec::new());
    for _ in 0..rounds {
        if value >= enough {
            break;
        }
        moves.clear();
        for (class, &at) in choice.iter().enumerate() {
            let (w, p) = instance.class(class);
            for item in 0..w.len() {
                if item != at {
                    moves.push(Move {
                        dw: w[item] as i64 - w[at] as i64,
                        dp: p[item] - p[at],
                        class: class as u32,
                        item: item as u32,
                    });
                }
            }
        }
        moves.sort_unstable_by_key(|m| m.dw);
        prefix_tops(&moves, &mut tops);
        let residual = (instance.capacity() - weight).min(i64::MAX as u64 / 2) as i64;
        let mut chosen: Option<[Option<Move>; 4]> = None;
        if let Some((gain, a, b)) = best_pair(&moves, &tops, residual, None)
            && gain > tol
        {
            chosen = Some([Some(moves[a]), b.map(|b| moves[b]), None, None]);
        } else {
            // Triples and quadruples. A move's reduced gain (profit change less the dual price
            // times the weight change) is at most the best one's, and a change that fits
            // gains at most its reduced gains plus the price of the residual: only moves
            // within that of the best can be part of a triple that gains. (The quadruples
            // take the best of them.) Sorted by weight change again, with their own tops.
            let reduced = |m: &Move| m.dp - slope * m.dw as f64;
            let best_reduced = moves.iter().map(reduced).fold(0.0, f64::max);
            let least = -slope * residual as f64 - 2.0 * best_reduced - tol;
            pool.clear();
            pool.extend(moves.iter().filter(|m| reduced(m) >= least));
            prefix_tops(&pool, &mut pool_tops);
            ranked.clear();
            ranked.extend(0..pool.len());
            let by_reduced =
                |x: &usize, y: &usize| reduced(&pool[*y]).total_cmp(&reduced(&pool[*x]));
            if QUAD_MOVES < ranked.len() {
                ranked.select_nth_unstable_by(QUAD_MOVES - 1, by_reduced);
                ranked.truncate(QUAD_MOVES);
            }
            ranked.sort_unstable_by(by_reduced);
            let mut gain = tol;
            for &f in ranked.iter().take(TRIPLE_FIRSTS) {
                let a = pool[f];
                if let Some((g, b, Some(c))) =
                    best_pair(&pool, &pool_tops, residual - a.dw, Some(a.class))
                    && a.dp + g > gain
                {
                    gain = a.dp + g;
                    chosen = Some([Some(a), Some(pool[b]), Some(pool[c]), None]);
                }
            }
            if chosen.is_none()
                && let Some(picks) = best_quad(&pool, &ranked, residual, tol, &mut pairs)
            {
                chosen = Some(picks.map(|i| Some(pool[i])));
            }
        }
        let Some(picked) = chosen else {
            break;
        };
        for m in picked.into_iter().flatten() {
            choice[m.class as usize] = m.item as usize;
        }
        gained += 1;
        match instance.evaluate(choice) {
            Ok((v, w)) => (value, weight) = (v, w),
            Err(_) => break,
        }
    }
    (value, gained)
}

/// The best three gains of distinct classes (see [`Top`]) of every prefix of `moves`, sorted
/// by weight change, into `tops`.
fn prefix_tops(moves: &[Move], tops: &mut Vec<Top>) {
    tops.clear();
    let mut top: Top = [None; 3];
    for i in 0..moves.len() {
        insert(&mut top, moves, i);
        tops.push(top);
    }
}

/// The best single move or pair of `moves` (sorted by weight change, `tops` their
/// [`prefix_tops`]) of classes other than `not` that fits `room`: its gain and indices. Scans
/// the moves in order, each one's partners a prefix that only shrinks, `O(n)`.
fn best_pair(
    moves: &[Move],
    tops: &[Top],
    room: i64,
    not: Option<u32>,
) -> Option<(f64, usize, Option<usize>)> {
    let mut pick: Option<(f64, usize, Option<usize>)> = None;
    let lightest = moves.first().map_or(0, |m| m.dw.min(0));
    let mut k = moves.len();
    for (i, a) in moves.iter().enumerate() {
        if a.dw > room - lightest {
            break;
        }
        if Some(a.class) == not {
            continue;
        }
        if a.dw <= room && pick.is_none_or(|p| a.dp > p.0) {
            pick = Some((a.dp, i, None));
        }
        while k > 0 && moves[k - 1].dw > room - a.dw {
            k -= 1;
        }
        let Some(top) = k.checked_sub(1).map(|k| &tops[k]) else {
            continue;
        };
        if let Some(b) = partner(top, moves, &[a.class, not.unwrap_or(u32::MAX)])
            && pick.is_none_or(|p| a.dp + moves[b].dp > p.0)
        {
            pick = Some((a.dp + moves[b].dp, i, Some(b)));
        }
    }
    pick
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_triple_gains_where_no_pair_does() {
        // Class 0 holds its heavy item; freeing it pays for both others' items only together
        // (weight 10 → 12 with capacity 12: +2, profit 10 → 13).
        let weights = [0, 10, 0, 6, 0, 6];
        let profits = [0.0, 10.0, 0.0, 6.5, 0.0, 6.5];
        let instance = MckpInstance::new(12, &weights, &profits, &[2, 4, 6]).unwrap();
        let mut choice = [1, 0, 0];
        let (value, rounds) = improve(&instance, &mut choice, f64::INFINITY, 4, 1.0, 1e-9);
        assert_eq!((choice, value, rounds), ([0, 1, 1], 13.0, 1));
        // With capacity 11 the triple does not fit either, and nothing changes.
        let mut choice = [1, 0, 0];
        let instance = MckpInstance::new(11, &weights, &profits, &[2, 4, 6]).unwrap();
        let (value, rounds) = improve(&instance, &mut choice, f64::INFINITY, 4, 1.0, 1e-9);
        assert_eq!((choice, value, rounds), ([1, 0, 0], 10.0, 0));
    }

    #[test]
    fn two_pairs_gain_where_no_triple_does() {
        // Classes 0 and 1 give up 10 each; 2 and 3 take 15 and 5 for half a unit more each.
        // Every pair or triple overflows or loses; all four gain 1 at the same weight.
        let weights = [0, 10, 0, 10, 0, 15, 0, 5];
        let profits = [0.0, 10.0, 0.0, 10.0, 0.0, 15.5, 0.0, 5.5];
        let instance = MckpInstance::new(22, &weights, &profits, &[2, 4, 6, 8]).unwrap();
        let mut choice = [1, 1, 0, 0];
        let (value, rounds) = improve(&instance, &mut choice, f64::INFINITY, 4, 1.0, 1e-9);
        assert_eq!((choice, value, rounds), ([0, 0, 1, 1], 21.0, 1));
    }

    #[test]
    fn the_best_pair_fills_the_residual() {
        // Two classes trade: class 0 gives up 5 for 4.5 less, class 1 takes 6 for 6 more.
        let weights = [0, 5, 0, 6];
        let profits = [0.0, 4.5, 0.0, 6.0];
        let instance = MckpInstance::new(6, &weights, &profits, &[2, 4]).unwrap();
        let mut choice = [1, 0];
        let (value, rounds) = improve(&instance, &mut choice, f64::INFINITY, 4, 1.0, 1e-9);
        assert_eq!((choice, value, rounds), ([0, 1], 6.0, 1));
    }

    proptest::proptest! {
        /// From any feasible start: stays feasible, never loses value, reports what the choice
        /// is worth.
        #[test]
        fn exchanges_keep_feasibility_and_never_lose(
            classes in proptest::collection::vec(
                proptest::collection::vec((0u64..50, -20i32..50), 1..6),
                1..8,
            ),
            extra in 0u64..60,
            slope in 0.0f64..2.0,
        ) {
            let mut weights = Vec::new();
            let mut profits = Vec::new();
            let mut ends = Vec::new();
            for class in &classes {
                weights.extend(class.iter().map(|c| c.0));
                profits.extend(class.iter().map(|c| f64::from(c.1)));
                ends.push(weights.len());
            }
            // The lightest choice of every class fits, with `extra` to spare.
            let lightest: Vec<usize> = classes
                .iter()
                .map(|c| (0..c.len()).min_by_key(|&i| c[i].0).unwrap_or(0))
                .collect();
            let capacity = classes.iter().zip(&lightest).map(|(c, &i)| c[i].0).sum::<u64>() + extra;
            let instance = MckpInstance::new(capacity, &weights, &profits, &ends).unwrap();
            let mut choice = lightest.clone();
            let (before, _) = instance.evaluate(&choice).unwrap();
            let (value, _) = improve(&instance, &mut choice, f64::INFINITY, 8, slope, 1e-9);
            let (after, weight) = instance.evaluate(&choice).unwrap();
            proptest::prop_assert!(weight <= capacity);
            proptest::prop_assert!(after >= before);
            proptest::prop_assert_eq!(value, after);
        }
    }
}
