//! `convtrain table`: the runs named (run, sweep or runs directories) as a paper table — markdown, CSV
//! or JSON — one row per configuration minus the seed (see `sweep::table`).
use crate::cli::{TableArgs, TableFormat};
use crate::error::{to_json_pretty, Result};
use crate::sweep::table::{csv_text, find_runs, markdown, table};

pub fn run(a: &TableArgs) -> Result<()> {
    let rows = table(&find_runs(&a.runs)?)?;
    let format = if a.json { TableFormat::Json } else { a.format };
    let text = match format {
        TableFormat::Markdown => markdown(&rows, a.metric),
        TableFormat::Csv => csv_text(&rows, a.metric)?,
        TableFormat::Json => to_json_pretty(&rows, "the table")? + "\n",
    };
    print!("{text}");
    Ok(())
}
