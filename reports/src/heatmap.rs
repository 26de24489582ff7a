//! Likelihood × impact heat-maps, inherent and residual side by side.

use std::collections::HashMap;

use polars::prelude::*;

use crate::frames::{rule, state_at, status_map};
use crate::load::{Dataset, RiskRow, day};
use crate::model::{
    Grid, HeatCell, Heatmap, LevelCounts, Rating, RiskChange, RiskItem, RiskLevel, RiskStatusCounts,
};
use certscope_domain::deadline::Dates;
use certscope_domain::{Deadline, RiskStatus, Status};

/// The risks of the dataset with their status and scores (as assessed then)
/// at the end of `at`; risks that did not exist yet are left out.
pub fn risks_at(data: &Dataset, at: chrono::NaiveDate) -> PolarsResult<DataFrame> {
    let ids: Vec<i64> = data.risks.iter().map(|r| r.id).collect();
    let ratings: Vec<(Rating, Rating)> = data
        .risks
        .iter()
        .map(|r| data.risk_ratings.on(r, at))
        .collect();
    let residual: Vec<u32> = ratings.iter().map(|(_, r)| u32::from(r.score)).collect();
    let inherent: Vec<u32> = ratings.iter().map(|(i, _)| u32::from(i.score)).collect();
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

fn item(data: &Dataset, risk: &RiskRow, status: &str, at: chrono::NaiveDate) -> RiskItem {
    let (inherent, residual) = data.risk_ratings.on(risk, at);
    let dates = Dates {
        due_date: risk.due_date,
        ..Dates::default()
    };
    let treatment_overdue = RiskStatus::parse(status)
        .ok()
        .and_then(|s| Deadline::of(Status::RiskStatus(s), dates))
        .is_some_and(|d| d.is_overdue(at));
    RiskItem {
        id: risk.id,
        title: risk.title.clone(),
        category: risk.category.clone(),
        owner: risk.owner.clone(),
        status: status.to_owned(),
        treatment: risk.treatment.clone(),
        inherent,
        residual,
        due_date: risk.due_date,
        treatment_overdue,
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

/// Risks that moved since the end of `previous`: their status (every risk's
/// `now`, closed ones included) or their place on either grid changed; worst
/// residual first.
fn changes(
    data: &Dataset,
    at: chrono::NaiveDate,
    previous: chrono::NaiveDate,
    now: &HashMap<i64, String>,
) -> PolarsResult<Vec<RiskChange>> {
    let before = status_map(&risks_at(data, previous)?, "id")?;
    let mut out: Vec<RiskChange> = data
        .risks
        .iter()
        .filter_map(|r| {
            let status = now.get(&r.id)?;
            let previous_status = before.get(&r.id);
            let (inherent, residual) = data.risk_ratings.on(r, at);
            // a risk that did not exist then had no place on the grid
            let (previous_inherent, previous_residual) = match previous_status {
                Some(_) => {
                    let (i, r) = data.risk_ratings.on(r, previous);
                    (Some(i), Some(r))
                }
                None => (None, None),
            };
            let moved = previous_status != Some(status)
                || previous_inherent != Some(inherent)
                || previous_residual != Some(residual);
            moved.then(|| RiskChange {
                id: r.id,
                title: r.title.clone(),
                previous_status: previous_status.cloned(),
                status: status.clone(),
                previous_inherent,
                inherent,
                previous_residual,
                residual,
            })
        })
        .collect();
    out.sort_by(|a, b| {
        b.residual
            .score
            .cmp(&a.residual.score)
            .then(a.id.cmp(&b.id))
    });
    Ok(out)
}

/// Heat-maps of the risks not closed at the end of `at`, with the status
/// changes since `previous`.
pub fn heatmap(
    data: &Dataset,
    at: chrono::NaiveDate,
    previous: chrono::NaiveDate,
    appetite: u8,
) -> PolarsResult<Heatmap> {
    let state = risks_at(data, at)?;
    // every risk's status on the day, closed ones included, for the changes
    let now = status_map(&state, "id")?;
    let live = state.lazy().filter(rule::risk_carried()).collect()?;
    let status = status_map(&live, "id")?;
    let by_id: HashMap<i64, &RiskRow> = data.risks.iter().map(|r| (r.id, r)).collect();
    let mut items: Vec<RiskItem> = status
        .iter()
        .filter_map(|(id, s)| by_id.get(id).map(|r| item(data, r, s, at)))
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
    let by_status = |items: &[RiskItem]| {
        let mut counts = RiskStatusCounts::default();
        for s in items
            .iter()
            .filter_map(|r| RiskStatus::parse(&r.status).ok())
        {
            counts.add(s);
        }
        counts
    };
    Ok(Heatmap {
        risks: items.len() as u64,
        by_status: by_status(&items),
        above_appetite_by_status: by_status(&above_appetite),
        inherent,
        residual,
        appetite,
        above_appetite,
        top_risks,
        previous_as_of: previous,
        changes: changes(data, at, previous, &now)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sample::{Risk, as_of, dataset, on};

    /// Seven risks as (inherent, residual): 1 open (25, 16), 2 treating
    /// (12, 9), 3 accepted (15, 15), 4 closed 10 days ago (4, 1), 5 identified
    /// only after the as-of day, 6 open (16, 12), 7 open (16, 16).
    fn register() -> Dataset {
        dataset(
            vec![],
            vec![],
            vec![
                Risk::new(1, (5, 5), (4, 4), vec![(-50, "open")]),
                Risk::new(2, (4, 3), (3, 3), vec![(-50, "open"), (-30, "treating")]),
                Risk::new(3, (5, 3), (5, 3), vec![(-50, "open"), (-40, "accepted")]),
                Risk::new(
                    4,
                    (2, 2),
                    (1, 1),
                    vec![(-50, "open"), (-30, "treating"), (-10, "closed")],
                ),
                Risk::new(5, (3, 4), (2, 5), vec![(3, "open")]),
                Risk::new(6, (4, 4), (3, 4), vec![(-50, "open")]),
                Risk::new(7, (4, 4), (4, 4), vec![(-20, "open")]),
            ],
            vec![],
        )
    }

    #[test]
    fn risks_at_a_day_carry_their_status_then_and_leave_out_later_ones() {
        let df = risks_at(&register(), as_of()).unwrap();
        let ids: Vec<i64> = df
            .column("id")
            .unwrap()
            .i64()
            .unwrap()
            .iter()
            .flatten()
            .collect();
        assert_eq!(ids, [1, 2, 3, 4, 6, 7]);
        let status = status_map(&df, "id").unwrap();
        assert_eq!(status[&4], "closed");
        assert_eq!(status[&3], "accepted");
        let residual: Vec<u32> = df
            .column("residual")
            .unwrap()
            .u32()
            .unwrap()
            .iter()
            .flatten()
            .collect();
        assert_eq!(residual, [16, 9, 15, 1, 12, 16]);
        let inherent: Vec<u32> = df
            .column("inherent")
            .unwrap()
            .u32()
            .unwrap()
            .iter()
            .flatten()
            .collect();
        assert_eq!(inherent, [25, 12, 15, 4, 16, 16]);
    }

    #[test]
    fn open_risks_are_counted_by_residual_level_as_of_each_day() {
        let counts = |at| {
            let c = open_by_level(&register(), at).unwrap();
            (c.low, c.medium, c.high, c.critical)
        };
        // open or treating: 1 and 7 critical, 6 high, 2 medium; 3 is accepted
        assert_eq!(counts(as_of()), (0, 1, 1, 2));
        // 25 days earlier 4 was still treated and 7 not identified yet
        assert_eq!(counts(on(-25)), (1, 1, 1, 1));
    }

    #[test]
    fn the_heat_maps_place_every_carried_risk_in_its_cells() {
        let h = heatmap(&register(), as_of(), on(-30), 9).unwrap();
        // all but the closed one and the one not identified yet
        assert_eq!(h.risks, 5);
        assert_eq!((h.inherent.total, h.residual.total), (5, 5));
        assert_eq!(h.inherent.cells.len(), 25);
        let occupied = |g: &Grid| -> Vec<(u8, u8, Vec<i64>)> {
            g.cells
                .iter()
                .filter(|c| c.count > 0)
                .map(|c| (c.likelihood, c.impact, c.risk_ids.clone()))
                .collect()
        };
        assert_eq!(
            occupied(&h.inherent),
            [
                (4, 3, vec![2]),
                (4, 4, vec![6, 7]),
                (5, 3, vec![3]),
                (5, 5, vec![1]),
            ]
        );
        assert_eq!(
            occupied(&h.residual),
            [
                (3, 3, vec![2]),
                (3, 4, vec![6]),
                (4, 4, vec![1, 7]),
                (5, 3, vec![3]),
            ]
        );
        let cell = h.residual.cell(4, 4).unwrap();
        assert_eq!(
            (cell.score, cell.level, cell.count),
            (16, RiskLevel::Critical, 2)
        );
        let cell = h.residual.cell(3, 3).unwrap();
        assert_eq!((cell.score, cell.level), (9, RiskLevel::Medium));
    }

    #[test]
    fn top_risks_come_worst_first_and_those_above_appetite_are_listed() {
        let h = heatmap(&register(), as_of(), on(-30), 9).unwrap();
        let ids = |items: &[RiskItem]| items.iter().map(|r| r.id).collect::<Vec<_>>();
        // residual, then inherent, then id
        assert_eq!(ids(&h.top_risks), [1, 7, 3, 6, 2]);
        assert_eq!(h.top_risks[2].status, "accepted");
        // residual above 9
        assert_eq!(h.appetite, 9);
        assert_eq!(ids(&h.above_appetite), [1, 7, 3, 6]);
        let h = heatmap(&register(), as_of(), on(-30), 15).unwrap();
        assert_eq!(ids(&h.above_appetite), [1, 7]);
    }

    #[test]
    fn carried_risks_are_counted_by_status_and_so_are_those_above_appetite() {
        let h = heatmap(&register(), as_of(), on(-30), 9).unwrap();
        // 1, 6 and 7 open; 2 treating; 3 accepted; 4 closed is not carried
        let counts = |c: RiskStatusCounts| (c.open, c.treating, c.accepted);
        assert_eq!(counts(h.by_status), (3, 1, 1));
        assert_eq!(h.by_status.total(), h.risks);
        // above 9: 1, 7, 6 open and 3 accepted
        assert_eq!(counts(h.above_appetite_by_status), (3, 0, 1));
    }

    #[test]
    fn a_treatment_is_overdue_past_its_due_date_unless_accepted() {
        let mut data = register();
        data.risks[1].due_date = Some(on(-1)); // 2, treating
        data.risks[2].due_date = Some(on(-1)); // 3, accepted: no deadline
        data.risks[5].due_date = Some(on(0)); // 6, open, due today
        let h = heatmap(&data, as_of(), on(-30), 9).unwrap();
        let overdue: Vec<i64> = h
            .top_risks
            .iter()
            .filter(|r| r.treatment_overdue)
            .map(|r| r.id)
            .collect();
        assert_eq!(overdue, [2]);
    }

    #[test]
    fn changes_list_the_risks_whose_status_moved_since_the_previous_pack() {
        let h = heatmap(&register(), as_of(), on(-35), 9).unwrap();
        let moved: Vec<(i64, Option<&str>, &str)> = h
            .changes
            .iter()
            .map(|c| (c.id, c.previous_status.as_deref(), c.status.as_str()))
            .collect();
        // 35 days ago: 2 open (treating at -30), 3 accepted already (-40),
        // 4 open (treating -30, closed -10), 7 not identified yet (-20)
        assert_eq!(
            moved,
            [
                (7, None, "open"),
                (2, Some("open"), "treating"),
                (4, Some("open"), "closed")
            ]
        );
        assert_eq!(h.previous_as_of, on(-35));
    }

    #[test]
    fn a_reassessed_risk_moves_on_the_grid_and_sits_where_it_was_at_a_past_date() {
        let risks = vec![
            // 2: treating since -30, its residual brought from 12 to 9 at -30
            Risk::new(2, (4, 3), (3, 3), vec![(-50, "open"), (-30, "treating")]).moved_on(
                -30,
                (4, 3),
                (4, 3),
            ),
            // 6: still open, its inherent rating raised at -5 (16 → 20)
            Risk::new(6, (4, 5), (3, 4), vec![(-50, "open")]).moved_on(-5, (4, 4), (3, 4)),
            // 8: never reassessed
            Risk::new(8, (3, 3), (2, 2), vec![(-50, "open")]),
        ];
        let data = dataset(vec![], vec![], risks, vec![]);

        let h = heatmap(&data, as_of(), on(-35), 9).unwrap();
        let moves: Vec<_> = h
            .changes
            .iter()
            .map(|c| {
                (
                    c.id,
                    c.previous_residual.map(|r| r.score),
                    c.residual.score,
                    c.previous_inherent.map(|r| r.score),
                    c.inherent.score,
                )
            })
            .collect();
        assert_eq!(
            moves,
            [
                (6, Some(12), 12, Some(16), 20),
                (2, Some(12), 9, Some(12), 12)
            ]
        );
        // today's grid: 2 at residual (3, 3); 35 days ago it sat at (4, 3)
        let cell = |h: &Heatmap, l: u8, i: u8| {
            h.residual
                .cells
                .iter()
                .find(|c| (c.likelihood, c.impact) == (l, i))
                .map(|c| c.risk_ids.clone())
                .unwrap_or_default()
        };
        assert_eq!(cell(&h, 3, 3), [2]);
        let then = heatmap(&data, on(-35), on(-70), 9).unwrap();
        assert_eq!(cell(&then, 4, 3), [2]);
        assert!(cell(&then, 3, 3).is_empty());
        let inherent_then = then.top_risks.iter().find(|r| r.id == 6).unwrap().inherent;
        assert_eq!(inherent_then.score, 16);
    }
}
