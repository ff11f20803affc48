//! The inputs of one task of a staged run (a Slurm job array, several machines): the inputs,
//! in order, cut into `tasks` contiguous pieces of about the same stored size. A file larger than
//! a task's share is split at record boundaries, by line ranges, so eight tasks over one big
//! file each get an eighth of it.
//!
//! Every task computes the same plan from the same inputs: the pieces cover each record exactly
//! once, whatever the number of tasks.

use std::ops::Range;

use crate::{Format, InputFile, IoError, ReadOptions, RecordReader};

/// The inputs of task `task` of `tasks`, and the index of the first one in the whole list (its
/// first and last files may be parts, with [`InputFile::lines`] set).
pub fn task_inputs(
    inputs: &[InputFile],
    task: usize,
    tasks: usize,
) -> Result<(usize, Vec<InputFile>), IoError> {
    assert!(task < tasks, "task {task} of {tasks}");
    let total: u64 = inputs.iter().map(|i| i.size).sum();
    // Task t covers stored bytes [t·total/tasks, (t+1)·total/tasks) of the inputs laid end to end.
    let bound = |t: usize| (u128::from(total) * t as u128 / tasks as u128) as u64;
    let (from, to) = (bound(task), bound(task + 1));
    let mut first = None;
    let mut mine = Vec::new();
    let mut offset = 0u64;
    for (index, input) in inputs.iter().enumerate() {
        let (start, end) = (offset, offset + input.size);
        offset = end;
        // Which tasks' intervals this file meets: it is split among them when more than one.
        let first_task = owner(start, total, tasks);
        let last_task = owner(end.saturating_sub(1).max(start), total, tasks);
        if last_task < task || first_task > task || (input.size == 0 && first_task != task) {
            continue;
        }
        let mut part = input.clone();
        if first_task != last_task {
            let lines = count_lines(input)?;
            let at = |byte: u64| -> u64 {
                1 + (u128::from(byte - start) * u128::from(lines) / u128::from(input.size)) as u64
            };
            let lo = if task == first_task { 0 } else { at(from) };
            let hi = if task == last_task { u64::MAX } else { at(to) };
            if lo >= hi {
                continue;
            }
            part.lines = Some(lo..hi);
        }
        first.get_or_insert(index);
        mine.push(part);
    }
    Ok((first.unwrap_or(inputs.len()), mine))
}

/// The task whose interval holds stored byte `byte`.
fn owner(byte: u64, total: u64, tasks: usize) -> usize {
    if total == 0 {
        return 0;
    }
    ((u128::from(byte) * tasks as u128 / u128::from(total)) as usize).min(tasks - 1)
}

/// The lines (rows) of a file, as a [`RecordReader`] numbers them.
fn count_lines(input: &InputFile) -> Result<u64, IoError> {
    if input.format == Format::Parquet
        && let Some(path) = input.path()
    {
        return crate::parquet_io::row_count(path);
    }
    let options = ReadOptions {
        max_record_bytes: usize::MAX,
        ..ReadOptions::default()
    };
    Ok(RecordReader::open(input, &options)
        .map(|r| r.line)
        .max()
        .unwrap_or(0))
}

/// A range of lines as the manifest shows it.
pub fn describe_lines(lines: &Range<u64>) -> String {
    match (lines.start, lines.end) {
        (0, u64::MAX) => "all".into(),
        (0, end) => format!("1..{end}"),
        (start, u64::MAX) => format!("{start}.."),
        (start, end) => format!("{start}..{end}"),
    }
}

#[cfg(test)]
mod tests {
    use std::fmt::Write as _;

    use super::*;
    use crate::{Compression, RecordKind};

    fn jsonl(name: &str, lines: usize) -> InputFile {
        let mut text = String::new();
        for i in 0..lines {
            let _ = writeln!(text, "{{\"text\": \"documento número {i}\"}}");
        }
        let bytes: &'static [u8] = Box::leak(text.into_bytes().into_boxed_slice());
        InputFile::in_memory(name, Format::Jsonl(Compression::None), bytes)
    }

    /// Every record of every input, as (input index, line), read by all tasks in turn.
    fn read_by_tasks(inputs: &[InputFile], tasks: usize) -> Vec<Vec<(usize, u64)>> {
        (0..tasks)
            .map(|t| {
                let (first, mine) = task_inputs(inputs, t, tasks).unwrap();
                let mut seen = Vec::new();
                for (k, input) in mine.iter().enumerate() {
                    for record in RecordReader::open(input, &ReadOptions::default()) {
                        assert!(matches!(record.kind, RecordKind::Json(_)));
                        seen.push((first + k, record.line));
                    }
                }
                seen
            })
            .collect()
    }

    #[test]
    fn one_file_is_shared_by_all_tasks() {
        let inputs = [jsonl("big.jsonl", 1000)];
        let per_task = read_by_tasks(&inputs, 8);
        for seen in &per_task {
            assert!((110..=140).contains(&seen.len()), "{}", seen.len());
        }
        let all: Vec<_> = per_task.concat();
        let expected: Vec<_> = (1..=1000).map(|l| (0, l)).collect();
        assert_eq!(all, expected, "each record once, in order");
    }

    #[test]
    fn any_split_covers_every_record_once() {
        let inputs = [
            jsonl("a.jsonl", 7),
            jsonl("b.jsonl", 300),
            jsonl("c.jsonl", 0),
            jsonl("d.jsonl", 1),
            jsonl("e.jsonl", 45),
        ];
        let expected: Vec<_> = read_by_tasks(&inputs, 1).concat();
        assert_eq!(expected.len(), 353);
        for tasks in 2..=12 {
            assert_eq!(
                read_by_tasks(&inputs, tasks).concat(),
                expected,
                "{tasks} tasks"
            );
        }
    }

    #[test]
    fn whole_files_stay_whole_when_they_fit() {
        let inputs = [jsonl("a.jsonl", 100), jsonl("b.jsonl", 100)];
        for task in 0..2 {
            let (first, mine) = task_inputs(&inputs, task, 2).unwrap();
            assert_eq!(first, task);
            assert_eq!(mine.len(), 1);
            assert_eq!(mine[0].lines, None);
        }
    }

    #[test]
    fn more_tasks_than_records_leaves_some_empty() {
        let inputs = [jsonl("a.jsonl", 3)];
        let per_task = read_by_tasks(&inputs, 8);
        assert_eq!(per_task.iter().filter(|s| s.is_empty()).count(), 5);
        assert_eq!(per_task.concat().len(), 3);
    }
}
