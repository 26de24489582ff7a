use crate::raw::build::BuilderNode;
use crate::raw::{CompiledAddr, NONE_ADDRESS};

/// The rows a registry starts with (vendored change, see below).
const INITIAL_TABLE_SIZE: usize = 64;
/// How many times the rows multiply each time the registry grows.
const GROWTH: usize = 4;
/// The registry grows once it has stored a node for every `SPARSENESS` rows.
const SPARSENESS: usize = 8;

/// A cache of compiled nodes, so that equal suffixes are written once.
///
/// Vendored change: upstream allocates all `table_size * mru_size` cells when
/// a builder is created (20,000 for every FST, about 1 MB, whatever the number
/// of keys). tantivy creates a builder for every indexed field of every
/// segment it writes or merges, so a commit of ten documents paid for
/// twenty-one of them. Here the table starts at `INITIAL_TABLE_SIZE` rows and
/// grows (`GROWTH` times, keeping what it holds) once it has stored a node for
/// every `SPARSENESS` rows, up to the `table_size` it was given. A cache may
/// forget, so the FST it helps build is valid whatever its size; a larger one
/// only shares more suffixes. It must stay sparse: a row holds two nodes and
/// evicts the older, so a table that grew only when full kept losing the
/// suffixes every key shares (a 100,000-key FST came out 40 % larger); grown
/// this early, FSTs of English words, URLs, hashes and ids came out the same
/// size as upstream's or smaller.
#[derive(Debug)]
pub struct Registry {
    table: Vec<RegistryCell>,
    table_size: usize,     // number of rows now
    max_table_size: usize, // number of rows it may grow to
    mru_size: usize,       // number of columns
    stored: usize,         // nodes stored since it was created
}

#[derive(Debug)]
struct RegistryCache<'a> {
    cells: &'a mut [RegistryCell],
}

#[derive(Clone, Debug)]
pub struct RegistryCell {
    addr: CompiledAddr,
    node: BuilderNode,
}

#[derive(Debug)]
pub enum RegistryEntry<'a> {
    Found(CompiledAddr),
    NotFound(&'a mut RegistryCell),
    Rejected,
}

impl Registry {
    #[inline]
    pub fn new(table_size: usize, mru_size: usize) -> Registry {
        let max_cells = table_size.checked_mul(mru_size).unwrap();
        let rows = if max_cells == 0 {
            0
        } else {
            table_size.min(INITIAL_TABLE_SIZE)
        };
        Registry {
            table: vec![RegistryCell::none(); rows * mru_size],
            table_size: rows,
            max_table_size: table_size,
            mru_size,
            stored: 0,
        }
    }

    /// The cells the registry holds now (for tests).
    #[cfg(test)]
    pub fn capacity(&self) -> usize {
        self.table.len()
    }

    /// Where the registry holds `node`, without touching it (for tests).
    #[cfg(test)]
    fn get(&self, node: &BuilderNode) -> Option<CompiledAddr> {
        self.table[self.row(node)]
            .iter()
            .find(|c| !c.is_none() && &c.node == node)
            .map(|c| c.addr)
    }

    #[inline]
    pub fn entry(&mut self, node: &BuilderNode) -> RegistryEntry<'_> {
        if self.table.is_empty() {
            return RegistryEntry::Rejected;
        }
        if self.stored * SPARSENESS >= self.table_size && self.table_size < self.max_table_size {
            self.grow();
        }
        let row = self.row(node);
        let entry = RegistryCache {
            cells: &mut self.table[row],
        }
        .entry(node);
        if let RegistryEntry::NotFound(_) = entry {
            self.stored += 1;
        }
        entry
    }

    /// The cells of the row `node` belongs to.
    #[inline]
    fn row(&self, node: &BuilderNode) -> std::ops::Range<usize> {
        let start = self.mru_size * (hash(node) % self.table_size as u64) as usize;
        start..start + self.mru_size
    }

    /// Multiplies the rows by `GROWTH` (at most to `max_table_size`) and
    /// moves every cell it holds to its new row, most recently used first.
    #[cold]
    fn grow(&mut self) {
        let rows = (self.table_size * GROWTH).min(self.max_table_size);
        let old = std::mem::replace(
            &mut self.table,
            vec![RegistryCell::none(); rows * self.mru_size],
        );
        self.table_size = rows;
        // the most recently used cell of every row first, then the next:
        // where rows meet in a new one, it keeps the most recent
        for column in 0..self.mru_size {
            for cell in old.iter().skip(column).step_by(self.mru_size) {
                if cell.is_none() {
                    continue;
                }
                let row = self.row(&cell.node);
                if let Some(free) = self.table[row].iter_mut().find(|c| c.is_none()) {
                    free.clone_from(cell);
                }
            }
        }
    }
}

#[inline]
fn hash(node: &BuilderNode) -> u64 {
    // Basic FNV-1a hash as described:
    // https://en.wikipedia.org/wiki/Fowler%E2%80%93Noll%E2%80%93Vo_hash_function
    //
    // In unscientific experiments, this provides the same compression
    // as `std::hash::SipHasher` but is much much faster.
    const FNV_PRIME: u64 = 1_099_511_628_211;
    let mut h = 14_695_981_039_346_656_037;
    h = (h ^ (node.is_final as u64)).wrapping_mul(FNV_PRIME);
    h = (h ^ node.final_output.value()).wrapping_mul(FNV_PRIME);
    for t in &node.trans {
        h = (h ^ (t.inp as u64)).wrapping_mul(FNV_PRIME);
        h = (h ^ t.out.value()).wrapping_mul(FNV_PRIME);
        h = (h ^ (t.addr as u64)).wrapping_mul(FNV_PRIME);
    }
    h
}

impl<'a> RegistryCache<'a> {
    #[inline]
    fn entry(mut self, node: &BuilderNode) -> RegistryEntry<'a> {
        if self.cells.len() == 1 {
            let cell = &mut self.cells[0];
            if !cell.is_none() && &cell.node == node {
                RegistryEntry::Found(cell.addr)
            } else {
                cell.node.clone_from(node);
                RegistryEntry::NotFound(cell)
            }
        } else {
            let find = |c: &RegistryCell| !c.is_none() && &c.node == node;
            if let Some(i) = self.cells.iter().position(find) {
                let addr = self.cells[i].addr;
                self.promote(i); // most recently used
                RegistryEntry::Found(addr)
            } else {
                let last = self.cells.len() - 1;
                self.cells[last].node.clone_from(node); // discard LRU
                self.promote(last);
                RegistryEntry::NotFound(&mut self.cells[0])
            }
        }
    }

    #[inline]
    fn promote(&mut self, mut i: usize) {
        assert!(i < self.cells.len());
        while i > 0 {
            self.cells.swap(i - 1, i);
            i -= 1;
        }
    }
}

impl RegistryCell {
    fn none() -> RegistryCell {
        RegistryCell {
            addr: NONE_ADDRESS,
            node: BuilderNode::default(),
        }
    }

    fn is_none(&self) -> bool {
        self.addr == NONE_ADDRESS
    }

    pub fn insert(&mut self, addr: CompiledAddr) {
        self.addr = addr;
    }
}

#[cfg(test)]
mod tests {
    use super::{Registry, RegistryCache, RegistryCell, RegistryEntry};
    use crate::raw::build::BuilderNode;
    use crate::raw::{CompiledAddr, Output, Transition};

    fn assert_rejected(entry: RegistryEntry) {
        match entry {
            RegistryEntry::Rejected => {}
            entry => panic!("expected rejected entry, got: {:?}", entry),
        }
    }

    fn assert_not_found(entry: RegistryEntry) {
        match entry {
            RegistryEntry::NotFound(_) => {}
            entry => panic!("expected nout found entry, got: {:?}", entry),
        }
    }

    fn assert_insert_and_found(reg: &mut Registry, bnode: &BuilderNode) {
        match reg.entry(&bnode) {
            RegistryEntry::NotFound(cell) => cell.insert(1234),
            entry => panic!("unexpected not found entry, got: {:?}", entry),
        }
        match reg.entry(&bnode) {
            RegistryEntry::Found(addr) => assert_eq!(addr, 1234),
            entry => panic!("unexpected found entry, got: {:?}", entry),
        }
    }

    #[test]
    fn empty_is_ok() {
        let mut reg = Registry::new(0, 0);
        let bnode = BuilderNode {
            is_final: false,
            final_output: Output::zero(),
            trans: vec![],
        };
        assert_rejected(reg.entry(&bnode));
    }

    #[test]
    fn one_final_is_ok() {
        let mut reg = Registry::new(1, 1);
        let bnode = BuilderNode {
            is_final: true,
            final_output: Output::zero(),
            trans: vec![],
        };
        assert_insert_and_found(&mut reg, &bnode);
    }

    #[test]
    fn one_with_trans_is_ok() {
        let mut reg = Registry::new(1, 1);
        let bnode = BuilderNode {
            is_final: false,
            final_output: Output::zero(),
            trans: vec![Transition {
                addr: 0,
                inp: b'a',
                out: Output::zero(),
            }],
        };
        assert_insert_and_found(&mut reg, &bnode);
        assert_not_found(reg.entry(&BuilderNode {
            is_final: true,
            ..bnode.clone()
        }));
        assert_not_found(reg.entry(&BuilderNode {
            trans: vec![Transition {
                addr: 0,
                inp: b'b',
                out: Output::zero(),
            }],
            ..bnode.clone()
        }));
        assert_not_found(reg.entry(&BuilderNode {
            trans: vec![Transition {
                addr: 0,
                inp: b'a',
                out: Output::new(1),
            }],
            ..bnode.clone()
        }));
    }

    #[test]
    fn cache_works() {
        let mut reg = Registry::new(1, 1);

        let bnode1 = BuilderNode {
            is_final: true,
            ..BuilderNode::default()
        };
        assert_insert_and_found(&mut reg, &bnode1);

        let bnode2 = BuilderNode {
            final_output: Output::new(1),
            ..bnode1.clone()
        };
        assert_insert_and_found(&mut reg, &bnode2);
        assert_not_found(reg.entry(&bnode1));
    }

    fn distinct(i: u64) -> BuilderNode {
        BuilderNode {
            is_final: true,
            final_output: Output::new(i),
            trans: vec![],
        }
    }

    fn store(reg: &mut Registry, i: u64) {
        match reg.entry(&distinct(i)) {
            RegistryEntry::NotFound(cell) => cell.insert(i as CompiledAddr + 10),
            entry => panic!("{i}: expected a new node, got {:?}", entry),
        }
    }

    // Vendored change: the table starts small, grows while it fills, keeps
    // what it held and stops at the size it was given.
    #[test]
    fn starts_small_and_grows_to_its_size() {
        let mut reg = Registry::new(10_000, 2);
        assert_eq!(reg.capacity(), 128);
        for i in 0..100_000 {
            store(&mut reg, i);
            // the node just stored is found, across every growth
            match reg.entry(&distinct(i)) {
                RegistryEntry::Found(addr) => assert_eq!(addr, i as CompiledAddr + 10),
                entry => panic!("{i}: expected it found, got {:?}", entry),
            }
            // grown as the eighth node of 64 rows is stored and looked up
            let cells = reg.capacity();
            match i {
                0..=6 => assert_eq!(cells, 128, "{i}"),
                8..=30 => assert_eq!(cells, 512, "{i}"),
                511.. => assert_eq!(cells, 20_000, "{i}"),
                _ => assert!(cells < 20_000, "{i}"),
            }
        }
    }

    #[test]
    fn growing_keeps_what_it_held() {
        let mut reg = Registry::new(10_000, 2);
        for i in 0..8 {
            store(&mut reg, i);
        }
        assert_eq!(reg.capacity(), 128);
        let held: Vec<u64> = (0..8)
            .filter(|&i| reg.get(&distinct(i)).is_some())
            .collect();
        assert!(held.len() >= 7, "{held:?}");
        // the next look-up grows the table; a node it finds is not stored
        let first = held[0] as CompiledAddr + 10;
        assert!(
            matches!(reg.entry(&distinct(held[0])), RegistryEntry::Found(addr) if addr == first)
        );
        assert_eq!(reg.capacity(), 512);
        for &i in &held {
            assert_eq!(reg.get(&distinct(i)), Some(i as CompiledAddr + 10), "{i}");
        }
    }

    #[test]
    fn promote() {
        let bn = BuilderNode::default();
        let mut bnodes = vec![
            RegistryCell {
                addr: 1,
                node: bn.clone(),
            },
            RegistryCell {
                addr: 2,
                node: bn.clone(),
            },
            RegistryCell {
                addr: 3,
                node: bn.clone(),
            },
            RegistryCell {
                addr: 4,
                node: bn.clone(),
            },
        ];
        let mut cache = RegistryCache { cells: &mut bnodes };

        cache.promote(0);
        assert_eq!(cache.cells[0].addr, 1);
        assert_eq!(cache.cells[1].addr, 2);
        assert_eq!(cache.cells[2].addr, 3);
        assert_eq!(cache.cells[3].addr, 4);

        cache.promote(1);
        assert_eq!(cache.cells[0].addr, 2);
        assert_eq!(cache.cells[1].addr, 1);
        assert_eq!(cache.cells[2].addr, 3);
        assert_eq!(cache.cells[3].addr, 4);

        cache.promote(3);
        assert_eq!(cache.cells[0].addr, 4);
        assert_eq!(cache.cells[1].addr, 2);
        assert_eq!(cache.cells[2].addr, 1);
        assert_eq!(cache.cells[3].addr, 3);

        cache.promote(2);
        assert_eq!(cache.cells[0].addr, 1);
        assert_eq!(cache.cells[1].addr, 4);
        assert_eq!(cache.cells[2].addr, 2);
        assert_eq!(cache.cells[3].addr, 3);
    }
}
