//! The chart of a small run, read back from its SVG: a lane per node, an arrow per message
//! sent, drops drawn as drops (a cross short of the lane), duplicates as a second arrow.

mod common;

use conclave_reports::chart::Chart;
use conclave_reports::svg::svg;
use conclave_sim::trace::What;
use roxmltree::{Document, Node};

fn classes<'a>(n: &Node<'a, 'a>) -> Vec<&'a str> {
    n.attribute("class")
        .map_or(vec![], |c| c.split_whitespace().collect())
}

fn with_classes<'a>(doc: &'a Document<'a>, want: &[&str]) -> Vec<Node<'a, 'a>> {
    doc.descendants()
        .filter(|n| {
            let c = classes(n);
            want.iter().all(|w| c.contains(w))
        })
        .collect()
}

#[test]
fn the_svg_has_a_lane_per_node_and_an_arrow_per_message() {
    let run = common::small();
    let trace = run.trace.as_deref().unwrap();
    let count = |f: fn(&What) -> bool| trace.iter().filter(|e| f(&e.what)).count();
    let sends = count(|w| matches!(w, What::Send { .. }));
    let drops = count(|w| matches!(w, What::Drop { .. }));
    let duplicates = count(|w| matches!(w, What::Duplicate { .. }));
    let delivered = count(|w| matches!(w, What::Deliver { .. }));
    // The scenario shows every kind of arrow.
    assert!(
        sends > 100 && drops > 5 && duplicates > 5,
        "{sends} {drops} {duplicates}"
    );

    let names: Vec<String> = run.nodes.iter().map(|n| n.name.clone()).collect();
    let chart = Chart::new(trace, &names, run.end_time_us);
    let text = svg(&chart, 1600.0);
    let doc = Document::parse(&text).expect("the SVG is well-formed XML");
    assert_eq!(doc.root_element().tag_name().name(), "svg");

    let lanes: Vec<&str> = with_classes(&doc, &["lane"])
        .iter()
        .filter_map(|n| n.attribute("data-node"))
        .collect();
    assert_eq!(lanes, ["n1", "end", "a-b:c", "par"]);

    let msgs = with_classes(&doc, &["msg"]);
    let copies = with_classes(&doc, &["msg", "duplicate"]);
    assert_eq!(msgs.len() - copies.len(), sends, "one arrow per send");
    assert_eq!(copies.len(), duplicates, "one more arrow per duplicate");
    assert!(with_classes(&doc, &["orphan"]).is_empty());

    // Every delivery and drop ends one arrow; the rest are in flight at the end.
    let delivered_arrows = with_classes(&doc, &["msg", "delivered"]);
    let dropped = with_classes(&doc, &["msg", "dropped"]);
    let in_flight = with_classes(&doc, &["msg", "inflight"]);
    assert_eq!(delivered_arrows.len(), delivered);
    assert_eq!(dropped.len(), drops);
    assert_eq!(
        delivered_arrows.len() + dropped.len() + in_flight.len(),
        msgs.len()
    );

    // A drop: a line with no arrowhead, a cross at its end, short of the receiver's lane;
    // its tooltip gives the reason.
    let lane_y: Vec<f64> = with_classes(&doc, &["lane-line"])
        .iter()
        .map(|n| n.attribute("y1").unwrap().parse().unwrap())
        .collect();
    for d in &dropped {
        let line = d.children().find(|c| c.has_tag_name("line")).unwrap();
        assert!(line.attribute("marker-end").is_none());
        assert!(d
            .children()
            .any(|c| c.has_tag_name("path") && classes(&c).contains(&"cross")));
        let y2: f64 = line.attribute("y2").unwrap().parse().unwrap();
        assert!(
            lane_y.iter().all(|y| (y - y2).abs() > 1.0),
            "a dropped arrow ends short of every lane"
        );
        let title = d.children().find(|c| c.has_tag_name("title")).unwrap();
        let title = title.text().unwrap();
        assert!(
            ["lost", "partitioned", "down", "paused"]
                .iter()
                .any(|r| title.ends_with(r)),
            "{title}"
        );
    }
    // A delivered arrow has its head and its kind as its label.
    for m in &delivered_arrows {
        let line = m.children().find(|c| c.has_tag_name("line")).unwrap();
        assert_eq!(line.attribute("marker-end"), Some("url(#ah)"));
        let label = m.children().find(|c| c.has_tag_name("text")).unwrap();
        assert_eq!(label.text(), m.attribute("data-kind"));
    }
    // Marks and spans.
    for (class, n) in [
        ("crash", 1),
        ("restart", 1),
        ("pause", 1),
        ("resume", 1),
        ("partition", 4),
        ("blocked", 2),
        ("down", 1),
        ("paused", 1),
    ] {
        assert_eq!(with_classes(&doc, &[class]).len(), n, "{class}");
    }
    assert!(!with_classes(&doc, &["belief"]).is_empty());
    assert!(!with_classes(&doc, &["leading"]).is_empty());
    assert!(
        !with_classes(&doc, &["conflict"]).is_empty(),
        "two leaders at 5.2s"
    );
}

#[test]
fn the_html_report_embeds_its_data_and_needs_nothing_from_outside() {
    let run = common::small();
    let source = conclave_reports::Source::Run(&run);
    let page = conclave_reports::html::report(
        &source,
        &conclave_reports::html::Siblings::of(&source.stem()),
    );
    assert!(page.starts_with("<!DOCTYPE html>"));
    // No network: no external script, style, image or font.
    for needle in ["src=\"http", "href=\"http", "url(http", "@import", "//cdn"] {
        assert!(!page.contains(needle), "{needle}");
    }
    // The data parses as JSON and holds every message once.
    let start = page.find("id=\"conclave-data\">").unwrap() + "id=\"conclave-data\">".len();
    let end = start + page[start..].find("</script>").unwrap();
    let data: serde_json::Value = serde_json::from_str(&page[start..end]).unwrap();
    let sends = run
        .trace
        .as_ref()
        .unwrap()
        .iter()
        .filter(|e| matches!(e.what, What::Send { .. } | What::Duplicate { .. }))
        .count();
    assert_eq!(data["m"].as_array().unwrap().len(), sends * 7);
    assert_eq!(data["lanes"].as_array().unwrap().len(), 4);
    assert_eq!(data["violation"]["at"], 5_200_000);
    assert!(page.contains("<button id=\"first-violation\""));
    // The summary.
    for needle in [
        "FAILED",
        "AtMostOneLeader",
        &run.trace_hash,
        "conclave run small.ron --seed 0",
        "time to stable leader",
        conclave_reports::shiviz::REGEX,
        "small.seed-0.mmd",
    ] {
        assert!(
            page.contains(&conclave_reports::svg::esc(needle)),
            "{needle}"
        );
    }
}
