//! `heyblue-dlq`: lists the dead letters of a topic and replays them to the
//! topic they came from, once whatever made them fail is fixed.
//!
//! ```text
//! heyblue-dlq list <topic>                        # e.g. heyblue.connection.v1
//! heyblue-dlq replay <topic> <partition>:<offset>  # one dead letter, as listed
//! heyblue-dlq replay <topic> --all
//! ```
//!
//! The broker comes from `KAFKA_BOOTSTRAP` or `--bootstrap <host:port>`.
//! Replaying is safe to repeat: consumers remember every event they handled.
//! The dead-letter topic itself is append-only and keeps what was replayed.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::{bail, Context};
use messaging::inspect::{read_topic, replay, RawMessage};
use messaging::kafka::{
    HEADER_DLQ_CONSUMER, HEADER_DLQ_ERROR, HEADER_DLQ_OFFSET, HEADER_DLQ_PARTITION,
};

const USAGE: &str = "usage: heyblue-dlq [--bootstrap HOST:PORT] list <topic>
       heyblue-dlq [--bootstrap HOST:PORT] replay <topic> (<partition>:<offset> | --all)";

fn main() -> ExitCode {
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("heyblue-dlq: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(std::env::args().skip(1).collect())) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("heyblue-dlq: {error:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(mut args: Vec<String>) -> anyhow::Result<()> {
    let bootstrap = match args.iter().position(|a| a == "--bootstrap") {
        Some(i) if i + 1 < args.len() => {
            let value = args.remove(i + 1);
            args.remove(i);
            value
        }
        Some(_) => bail!("--bootstrap needs a value\n{USAGE}"),
        None => {
            std::env::var("KAFKA_BOOTSTRAP").context("set KAFKA_BOOTSTRAP or pass --bootstrap")?
        }
    };
    let words: Vec<&str> = args.iter().map(String::as_str).collect();
    match words.as_slice() {
        ["list", topic] => {
            let letters = dead_letters(&bootstrap, topic).await?;
            for letter in &letters {
                println!("{}", describe(letter));
            }
            eprintln!("{} dead letter(s) on {}", letters.len(), dlq_name(topic));
            Ok(())
        }
        ["replay", topic, "--all"] => {
            let letters = dead_letters(&bootstrap, topic).await?;
            for letter in &letters {
                replay(&bootstrap, letter).await?;
                println!("replayed {}:{}", letter.partition, letter.offset);
            }
            eprintln!("{} dead letter(s) replayed to {topic}", letters.len());
            Ok(())
        }
        ["replay", topic, position] => {
            let (partition, offset) = position
                .split_once(':')
                .and_then(|(p, o)| Some((p.parse::<i32>().ok()?, o.parse::<i64>().ok()?)))
                .with_context(|| format!("{position:?} is not <partition>:<offset>"))?;
            let letters = dead_letters(&bootstrap, topic).await?;
            let letter = letters
                .iter()
                .find(|l| l.partition == partition && l.offset == offset)
                .with_context(|| format!("no dead letter at {position} on {}", dlq_name(topic)))?;
            replay(&bootstrap, letter).await?;
            println!("replayed {partition}:{offset}");
            Ok(())
        }
        _ => bail!("{USAGE}"),
    }
}

fn dlq_name(topic: &str) -> String {
    format!("{}.dlq", topic.trim_end_matches(".dlq"))
}

async fn dead_letters(bootstrap: &str, topic: &str) -> anyhow::Result<Vec<RawMessage>> {
    read_topic(bootstrap, &dlq_name(topic), Duration::from_secs(2)).await
}

fn describe(letter: &RawMessage) -> String {
    format!(
        "{}:{}  {}  event_id={}  from {}[{}]@{} by {}  error: {}",
        letter.partition,
        letter.offset,
        letter
            .event_type()
            .unwrap_or_else(|| "(undecodable)".to_owned()),
        letter
            .event_id()
            .map(|id| id.to_string())
            .unwrap_or_else(|| "-".to_owned()),
        letter
            .header(messaging::kafka::HEADER_DLQ_TOPIC)
            .unwrap_or("?"),
        letter.header(HEADER_DLQ_PARTITION).unwrap_or("?"),
        letter.header(HEADER_DLQ_OFFSET).unwrap_or("?"),
        letter.header(HEADER_DLQ_CONSUMER).unwrap_or("?"),
        letter.header(HEADER_DLQ_ERROR).unwrap_or("?"),
    )
}
