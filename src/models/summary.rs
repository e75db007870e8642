//! `convtrain summary`: per-layer table (output shape, parameters, MACs), trainable total (the count
//! the papers quote), parameters per weight-decay group. Nothing is trained.
use super::Model;
use std::fmt::Write;
use tch::{Kind, Tensor};

/// One table row.
#[derive(Debug, Clone, serde::Serialize)]
pub struct SummaryRow {
    pub name: String,
    pub kind: String,
    pub shape: Vec<i64>,
    pub params: i64,
    pub macs: i64,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct ModelSummary {
    pub rows: Vec<SummaryRow>,
    pub total_params: i64,
    pub total_macs: i64,
    /// (group name, weight decay, parameters)
    pub groups: Vec<(String, f64, i64)>,
}

/// Traces one forward pass of a single image and attributes parameters to layers by name prefix (or
/// the layer's own name, for a weight stored directly under it, like DiracNet's stem `conv`);
/// parameters no traced layer owns (shared template banks) get rows of their own. `groups` are the
/// optimizer's weight-decay groups (name, decay, parameters), shown as they are.
pub fn summarize(model: &Model, groups: Vec<(String, f64, i64)>) -> ModelSummary {
    let c = &model.config;
    let x = Tensor::zeros([1, c.in_channels, c.image_size, c.image_size], (Kind::Float, model.vs.device()));
    let (_, trace) = tch::no_grad(|| model.forward_traced(&x, false));
    let params = model.named_parameters();
    let mut owned = vec![false; params.len()];
    let mut rows = Vec::new();
    for t in &trace {
        let prefix = format!("{}.", t.name);
        let mut n = 0;
        for (i, (name, p)) in params.iter().enumerate() {
            // A layer traced under its one parameter's name (a generated conv's codes) owns it too.
            if !owned[i] && (name.starts_with(&prefix) || *name == t.name) {
                owned[i] = true;
                n += p.numel() as i64;
            }
        }
        rows.push(SummaryRow {
            name: t.name.clone(),
            kind: t.kind.to_string(),
            shape: t.shape.clone(),
            params: n,
            macs: t.macs,
        });
    }
    for (i, (name, p)) in params.iter().enumerate() {
        if !owned[i] {
            rows.push(SummaryRow {
                name: name.clone(),
                kind: "Parameter".into(),
                shape: p.size(),
                params: p.numel() as i64,
                macs: 0,
            });
        }
    }
    ModelSummary { total_params: model.num_parameters(), total_macs: rows.iter().map(|r| r.macs).sum(), rows, groups }
}

/// `n` with thousands separators (1,416,394), as the papers print counts.
pub fn thousands(n: i64) -> String {
    let s = n.abs().to_string();
    let mut out = String::new();
    for (i, ch) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(ch);
    }
    if n < 0 {
        format!("-{out}")
    } else {
        out
    }
}

impl ModelSummary {
    pub fn render(&self) -> String {
        let mut s = String::new();
        let w = self.rows.iter().map(|r| r.name.len()).max().unwrap_or(5).max(5);
        let k = self.rows.iter().map(|r| r.kind.len()).max().unwrap_or(4).max(4);
        let _ = writeln!(
            s,
            "{:<w$}  {:<k$}  {:<22}  {:>12}  {:>15}",
            "layer", "type", "output shape", "parameters", "MACs"
        );
        for r in &self.rows {
            let shape = format!("{:?}", r.shape);
            let _ = writeln!(
                s,
                "{:<w$}  {:<k$}  {:<22}  {:>12}  {:>15}",
                r.name,
                r.kind,
                shape,
                thousands(r.params),
                thousands(r.macs)
            );
        }
        let _ = writeln!(s, "\ntrainable parameters: {}", thousands(self.total_params));
        for (name, wd, n) in &self.groups {
            let _ = writeln!(s, "  weight-decay group {name:<8} (wd {wd}): {}", thousands(*n));
        }
        let _ = writeln!(s, "MACs per image: {} ({:.3} G)", thousands(self.total_macs), self.total_macs as f64 / 1e9);
        s
    }
}
