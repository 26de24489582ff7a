//! Likelihood × impact heat-maps, inherent and residual side by side.

use std::collections::HashMap;

use polars::prelude::*;

use crate::frames::{rule, state_at, status_map};
use crate::load::{Dataset, RiskRow, day};
use crate::model::{Grid, HeatCell, Heatmap, LevelCounts, Rating, RiskItem, RiskLevel};

fn rating(likelihood: i16, impact: i16) -> Rating {
    Rating::new(likelihood.into(), impact.into())
}

/// The risks of the dataset with their status at the end of `at`; risks that
/// did not exist yet are left out.
pub fn risks_at(data: &Dataset, at: chrono::NaiveDate) -> PolarsResult<DataFrame> {
    let ids: Vec<i64> = data.risks.iter().map(|r| r.id).collect();
    let residual: Vec<u32> = data
        .risks
        .iter()
        .map(|r| u32::from(rating(r.residual_likelihood, r.residual_impact).score))
        .collect();
    let inherent: Vec<u32> = data
        .risks
        .iter()
        .map(|r| u32::from(rating(r.inherent_likelihood, r.inherent_impact).score))
        .collect();
    let frame = DataFrame::new_infer_height(vec![
        Column::new("id".into(), ids),
        Column::new("residual".into(), residual),
        Column::new("inherent".into(), inherent),
    ])?;
    frame
        .lazy()
        .join(
            state_at(&data.risk_history, day(at))?,
            [col("id")],
            [col("entity_id")],
            JoinArgs::new(JoinType::Inner),
        )
        .sort(["id"], SortMultipleOptions::default())
        .collect()
}

/// Open (open or treating) risks by residual level at the end of `at`.
pub fn open_by_level(data: &Dataset, at: chrono::NaiveDate) -> PolarsResult<LevelCounts> {
    let df = risks_at(data, at)?
        .lazy()
        .filter(rule::risk_open_work())
        .group_by([col("residual")])
        .agg([len().cast(DataType::UInt64).alias("n")])
        .collect()?;
    let mut counts = LevelCounts::default();
    let scores = df.column("residual")?.u32()?;
    let n = df.column("n")?.u64()?;
    for (score, n) in scores.iter().zip(n.iter()) {
        if let (Some(score), Some(n)) = (score, n) {
            for _ in 0..n {
                counts.add(RiskLevel::of_score(score as u8));
            }
        }
    }
    Ok(counts)
}

fn item(risk: &RiskRow, status: &str) -> RiskItem {
    RiskItem {
        id: risk.id,
        title: risk.title.clone(),
        category: risk.category.clone(),
        owner: risk.owner.clone(),
        status: status.to_owned(),
        treatment: risk.treatment.clone(),
        inherent: rating(risk.inherent_likelihood, risk.inherent_impact),
        residual: rating(risk.residual_likelihood, risk.residual_impact),
        due_date: risk.due_date,
    }
}

fn grid(counted: &DataFrame, likelihood: &str, impact: &str) -> PolarsResult<Grid> {
    let cells = counted
        .clone()
        .lazy()
        .group_by([col(likelihood), col(impact)])
        .agg([col("id").sort(SortOptions::default()).alias("ids")])
        .collect()?;
    let mut by_cell: HashMap<(u8, u8), Vec<i64>> = HashMap::new();
    let l = cells.column(likelihood)?.u32()?;
    let i = cells.column(impact)?.u32()?;
    let ids = cells.column("ids")?.list()?;
    for (row, (l, i)) in l.iter().zip(i.iter()).enumerate() {
        if let (Some(l), Some(i), Some(ids)) = (l, i, ids.get_as_series(row)) {
            let ids: Vec<i64> = ids.i64()?.iter().flatten().collect();
            by_cell.insert((l as u8, i as u8), ids);
        }
    }
    let mut cells = Vec::with_capacity(25);
    let mut total = 0;
    for likelihood in 1..=5u8 {
        for impact in 1..=5u8 {
            let risk_ids = by_cell.remove(&(likelihood, impact)).unwrap_or_default();
            let score = likelihood * impact;
            total += risk_ids.len() as u64;
            cells.push(HeatCell {
                likelihood,
                impact,
                score,
                level: RiskLevel::of_score(score),
                count: risk_ids.len() as u64,
                risk_ids,
            });
        }
    }
    Ok(Grid { total, cells })
}

/// Heat-maps of the risks not closed at the end of `at`.
pub fn heatmap(data: &Dataset, at: chrono::NaiveDate, appetite: u8) -> PolarsResult<Heatmap> {
    let state = risks_at(data, at)?;
    let live = state.lazy().filter(rule::risk_carried()).collect()?;
    let status = status_map(&live, "id")?;
    let by_id: HashMap<i64, &RiskRow> = data.risks.iter().map(|r| (r.id, r)).collect();
    let mut items: Vec<RiskItem> = status
        .iter()
        .filter_map(|(id, s)| by_id.get(id).map(|r| item(r, s)))
        .collect();
    // worst first: residual, then inherent, then id for a stable order
    items.sort_by(|a, b| {
        b.residual
            .score
            .cmp(&a.residual.score)
            .then(b.inherent.score.cmp(&a.inherent.score))
            .then(a.id.cmp(&b.id))
    });

    let scales = DataFrame::new_infer_height(vec![
        Column::new("id".into(), items.iter().map(|r| r.id).collect::<Vec<_>>()),
        Column::new(
            "il".into(),
            items
                .iter()
                .map(|r| u32::from(r.inherent.likelihood))
                .collect::<Vec<_>>(),
        ),
        Column::new(
            "ii".into(),
            items
                .iter()
                .map(|r| u32::from(r.inherent.impact))
                .collect::<Vec<_>>(),
        ),
        Column::new(
            "rl".into(),
            items
                .iter()
                .map(|r| u32::from(r.residual.likelihood))
                .collect::<Vec<_>>(),
        ),
        Column::new(
            "ri".into(),
            items
                .iter()
                .map(|r| u32::from(r.residual.impact))
                .collect::<Vec<_>>(),
        ),
    ])?;
    let inherent = grid(&scales, "il", "ii")?;
    let residual = grid(&scales, "rl", "ri")?;
    let above_appetite: Vec<RiskItem> = items
        .iter()
        .filter(|r| r.residual.above(appetite))
        .cloned()
        .collect();
    let top_risks = items.iter().take(10).cloned().collect();
    Ok(Heatmap {
        risks: items.len() as u64,
        inherent,
        residual,
        appetite,
        above_appetite,
        top_risks,
    })
}
