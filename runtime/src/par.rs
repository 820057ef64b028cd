//! Work over every step of a large workflow, on every core.
//!
//! Loading and planning touch a few hundred bytes of fresh memory per step, and on a virtual
//! machine faulting those pages in costs more than the work itself; before the first step runs
//! nothing else is using the other cores. rayon's pool is the one wasmtime already starts to
//! compile modules in parallel.

/// From how many items [`map_vec`] uses every core: below, starting rayon's threads costs more
/// than they save.
pub(crate) const PARALLEL_FROM: usize = 1024;

/// `items` mapped through `f`, in order, each result written straight into its place in the
/// vector returned; on every core when there are [`PARALLEL_FROM`] items or more.
pub(crate) fn map_vec<T: Send, U: Send>(items: Vec<T>, f: impl Fn(T) -> U + Sync + Send) -> Vec<U> {
    if items.len() < PARALLEL_FROM {
        return items.into_iter().map(f).collect();
    }
    use rayon::prelude::*;
    let mut out = Vec::with_capacity(items.len());
    items.into_par_iter().map(f).collect_into_vec(&mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_order_is_kept_either_way() {
        for n in [3, PARALLEL_FROM + 7] {
            let squares = map_vec((0..n).collect(), |i: usize| i * i);
            assert_eq!(squares, (0..n).map(|i| i * i).collect::<Vec<_>>());
        }
    }
}
