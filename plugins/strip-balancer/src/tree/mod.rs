//! The circuit tree as indices: nodes (circuits and strips) with their
//! rating and parent, and for each outlet the nodes above it (its strip
//! first, the root last). Built from a checked [`Config`].

pub mod limits;

use crate::config::Config;

#[derive(Debug, Clone)]
pub struct Node {
    pub id: String,
    /// Rating, A.
    pub limit_a: f64,
    pub parent: Option<usize>,
    pub is_strip: bool,
}

#[derive(Debug, Clone)]
pub struct Tree {
    pub nodes: Vec<Node>,
    /// Per outlet (config order): the nodes above it, strip first.
    pub paths: Vec<Vec<usize>>,
    /// Per outlet: its strip's node index.
    pub strip_of: Vec<usize>,
    /// Nodes deepest first (strips, then circuits by depth): the order in
    /// which overloads are relieved, so a strip is fixed before its circuit.
    pub deepest_first: Vec<usize>,
}

impl Tree {
    /// From a config that passed [`Config::parse`] (ids known, no loop).
    pub fn new(cfg: &Config) -> Tree {
        let mut nodes: Vec<Node> = Vec::new();
        let index = |nodes: &[Node], id: &str| nodes.iter().position(|n| n.id == id);
        for c in &cfg.circuits {
            nodes.push(Node {
                id: c.id.clone(),
                limit_a: c.max_current_a,
                parent: None,
                is_strip: false,
            });
        }
        for (i, c) in cfg.circuits.iter().enumerate() {
            nodes[i].parent = c.parent.as_deref().and_then(|p| index(&nodes, p));
        }
        for s in &cfg.strips {
            let parent = index(&nodes, &s.circuit);
            nodes.push(Node {
                id: s.id.clone(),
                limit_a: s.max_current_a,
                parent,
                is_strip: true,
            });
        }
        let mut paths = Vec::with_capacity(cfg.outlets.len());
        let mut strip_of = Vec::with_capacity(cfg.outlets.len());
        for o in &cfg.outlets {
            let strip = index(&nodes, &o.strip).expect("checked: the strip exists");
            strip_of.push(strip);
            paths.push(Self::up_from(&nodes, strip));
        }
        let depth = |n: usize| Self::up_from(&nodes, n).len();
        let mut deepest_first: Vec<usize> = (0..nodes.len()).collect();
        deepest_first.sort_by_key(|&n| std::cmp::Reverse(depth(n)));
        Tree {
            nodes,
            paths,
            strip_of,
            deepest_first,
        }
    }

    fn up_from(nodes: &[Node], start: usize) -> Vec<usize> {
        let mut path = vec![start];
        let mut at = nodes[start].parent;
        // Bounded by the node count: the config check refused loops.
        while let Some(p) = at {
            if path.len() > nodes.len() {
                break;
            }
            path.push(p);
            at = nodes[p].parent;
        }
        path
    }

    /// Whether `outlet` sits under `node`.
    pub fn is_under(&self, outlet: usize, node: usize) -> bool {
        self.paths[outlet].contains(&node)
    }
}
