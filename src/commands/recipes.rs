//! `convtrain recipes`: the bundled recipes (name, paper, arch, dataset, epochs, description) as an
//! aligned table, CSV or JSON.
use crate::cli::ListFormat;
use crate::error::{to_json_pretty, Result};
use crate::internal_err;
use crate::recipes::{list, RecipeInfo};

pub fn run(format: ListFormat) -> Result<()> {
    let recipes = list()?;
    let text = match format {
        ListFormat::Json => to_json_pretty(&recipes, "the recipe list")? + "\n",
        ListFormat::Csv => csv_text(&recipes)?,
        ListFormat::Table => table(&recipes),
    };
    print!("{text}");
    Ok(())
}

fn cells(r: &RecipeInfo) -> [String; 6] {
    let epochs = r.epochs.map_or(String::new(), |e| e.to_string());
    [r.name.clone(), r.paper.clone(), r.arch.clone(), r.dataset.clone(), epochs, r.description.clone()]
}

const HEADER: [&str; 6] = ["name", "paper", "arch", "dataset", "epochs", "description"];

fn csv_text(recipes: &[RecipeInfo]) -> Result<String> {
    let mut w = csv::Writer::from_writer(Vec::new());
    let bad = |e: csv::Error| internal_err!("cannot write the recipe list as CSV: {e}");
    w.write_record(HEADER).map_err(bad)?;
    for r in recipes {
        w.write_record(cells(r)).map_err(bad)?;
    }
    let bytes = w.into_inner().map_err(|e| internal_err!("cannot write the recipe list as CSV: {e}"))?;
    String::from_utf8(bytes).map_err(|e| internal_err!("the recipe list is not UTF-8: {e}"))
}

/// Left-aligned columns, the description last; the way to train one below.
fn table(recipes: &[RecipeInfo]) -> String {
    let rows: Vec<[String; 6]> = std::iter::once(HEADER.map(String::from)).chain(recipes.iter().map(cells)).collect();
    let widths: Vec<usize> = (0..5).map(|i| rows.iter().map(|r| r[i].chars().count()).max().unwrap_or(0)).collect();
    let mut s = String::new();
    for r in &rows {
        for (cell, w) in r.iter().zip(&widths) {
            s += &format!("{cell:<w$}  ");
        }
        s += &r[5];
        s.push('\n');
    }
    s += &format!("\n{} recipes; train one from any directory: convtrain train --config NAME\n", recipes.len());
    s
}
