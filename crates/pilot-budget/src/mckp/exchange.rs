//! Pair exchanges: improves a solution by changing the items of one or two classes at a time.
//!
//! A move changes one class's item; the best pair of moves of different classes (or the best
//! single move) that fits the residual capacity is applied, and again, until none gains. With
//! the moves sorted by weight change and the best two gains (of different classes) kept for
//! every prefix, each round costs `O(n log n)` for `n` items. It finds what a DP finds slowly
//! when many solutions lie just below the bound: two classes trading weight so that the
//! capacity fills exactly (`count::upper_bound` says when that is the optimum).

use alloc::vec::Vec;

use pilot_core::MckpInstance;

/// One class's change of item: weight and profit against its current item.
#[derive(Clone, Copy, Debug)]
struct Move {
    dw: i64,
    dp: f64,
    class: u32,
    item: u32,
}

/// Improves `choice` (a feasible solution) by pair exchanges until a round gains nothing, its
/// value reaches `enough` or `rounds` rounds have run; returns its value.
/// `tol` is the least gain that counts. Instances whose weights do not fit in `i64` are left
/// as they are.
pub(crate) fn improve(
    instance: &MckpInstance<'_>,
    choice: &mut [usize],
    enough: f64,
    rounds: usize,
    tol: f64,
) -> f64 {
    let Ok((mut value, mut weight)) = instance.evaluate(choice) else {
        return f64::NEG_INFINITY;
    };
    if weight > instance.capacity() || instance.weights().iter().any(|&w| w > i64::MAX as u64 / 2) {
        return value;
    }
    let mut moves: Vec<Move> = Vec::with_capacity(instance.item_count());
    // For each prefix of the sorted moves: the best gain and the best of another class.
    let mut best: Vec<(Option<usize>, Option<usize>)> = Vec::with_capacity(instance.item_count());
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
        best.clear();
        let (mut first, mut second): (Option<usize>, Option<usize>) = (None, None);
        for (i, m) in moves.iter().enumerate() {
            match first {
                Some(f) if moves[f].dp >= m.dp => {
                    if moves[f].class != m.class && second.is_none_or(|s| moves[s].dp < m.dp) {
                        second = Some(i);
                    }
                }
                _ => {
                    if first.is_some_and(|f| moves[f].class != m.class) {
                        second = first;
                    }
                    first = Some(i);
                }
            }
            best.push((first, second));
        }
        let residual = (instance.capacity() - weight).min(i64::MAX as u64 / 2) as i64;
        let mut pick: Option<(usize, Option<usize>)> = None;
        let mut gain = tol;
        for (i, a) in moves.iter().enumerate() {
            if a.dw <= residual && a.dp > gain {
                gain = a.dp;
                pick = Some((i, None));
            }
            // The heaviest partner that still fits with `a`.
            let k = moves.partition_point(|b| b.dw <= residual - a.dw);
            let Some(&(f, s)) = k.checked_sub(1).map(|k| &best[k]) else {
                continue;
            };
            let partner = match f {
                Some(f) if moves[f].class != a.class => Some(f),
                _ => s,
            };
            if let Some(b) = partner
                && a.dp + moves[b].dp > gain
            {
                gain = a.dp + moves[b].dp;
                pick = Some((i, Some(b)));
            }
        }
        let Some((a, b)) = pick else {
            break;
        };
        for m in core::iter::once(a).chain(b).map(|i| moves[i]) {
            choice[m.class as usize] = m.item as usize;
        }
        match instance.evaluate(choice) {
            Ok((v, w)) => (value, weight) = (v, w),
            Err(_) => break,
        }
    }
    value
}
