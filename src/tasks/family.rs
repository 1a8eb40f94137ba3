//! The registry of task families: each family file implements [`Family`] once, and the loader
//! asks this registry for a task's family instead of naming families itself.
//!
//! A family turns a task's records into scored items; the catalogue (`tasks/tasks.toml`) holds
//! everything else about the task as data. The registry also checks that the catalogue's output
//! type for each task is the one its family produces, so that data and loader cannot disagree.

use std::sync::OnceLock;

use super::context::Ctx;
use super::error::Result;
use super::example::TaskItems;
use super::kinds::{OutputType, TaskName};
use super::spec::Catalog;
use super::{belebele, hellaswag, mcqa, mgsm, pawsx, sib200, translation, xcopa, xnli, xstorycloze, xwinograd};

/// One task family's loader.
pub(super) trait Family: Sync {
    /// The task this family loads.
    fn task(&self) -> TaskName;

    /// How its items are scored; the catalogue must say the same.
    fn output(&self) -> OutputType;

    /// The items of one task, language and split.
    fn items(&self, ctx: &Ctx) -> Result<TaskItems>;
}

/// Every family, one per task.
static FAMILIES: [&dyn Family; 13] = [
    &xcopa::Xcopa,
    &xwinograd::Xwinograd,
    &sib200::Sib200,
    &mgsm::Mgsm,
    &xnli::Xnli,
    &xstorycloze::Xstorycloze,
    &pawsx::Pawsx,
    &belebele::Belebele,
    &hellaswag::MHellaswag,
    &translation::Tatoeba,
    &translation::Flores,
    &mcqa::MArc,
    &mcqa::MMmlu,
];

/// The family of `task`.
pub(super) fn of(task: TaskName) -> &'static dyn Family {
    static CHECKED: OnceLock<()> = OnceLock::new();
    CHECKED.get_or_init(|| {
        // The catalogue is compiled in and checked by the tests: failing here is a build defect.
        check(Catalog::get()).unwrap_or_else(|e| panic!("embedded tasks/tasks.toml contradicts the loaders: {e}"))
    });
    find(task)
}

fn find(task: TaskName) -> &'static dyn Family {
    // Every TaskName has a family (checked by the tests): a gap is a bug in this module.
    FAMILIES.iter().copied().find(|f| f.task() == task).unwrap_or_else(|| panic!("no family loads task {task}"))
}

/// Checks that the catalogue's output type of every task is its family's.
pub(super) fn check(catalog: &Catalog) -> std::result::Result<(), String> {
    for spec in catalog.specs() {
        let expected = find(spec.name).output();
        if spec.output != expected {
            return Err(format!("task {}: output must be {expected:?}, the data says {:?}", spec.name, spec.output));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_task_has_exactly_one_family() {
        for task in TaskName::ALL {
            assert_eq!(FAMILIES.iter().filter(|f| f.task() == task).count(), 1, "{task}");
        }
        assert_eq!(FAMILIES.len(), TaskName::ALL.len());
        check(Catalog::get()).unwrap();
    }

    #[test]
    fn data_that_contradicts_the_loader_is_rejected() {
        let text = include_str!("../../tasks/tasks.toml");
        let broken = text.replacen("output = \"partial_choice\"", "output = \"multiple_choice\"", 1);
        let err = check(&Catalog::parse(&broken).unwrap()).unwrap_err();
        assert!(err.contains("xwinograd"), "{err}");
    }
}
