//! Engine behaviour against an in-memory provider that logs every call:
//! batched refresh, ordering of creates and deletes, provider aliases,
//! create-before-destroy, and failure propagation. Configurations are fixtures
//! in strings, written to a temporary directory.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use infra_core::plan::{Action, PlanMode};
use infra_core::state::{LocalStore, State, StateStore};
use infra_core::{
    AttributeSchema, OperationContext, Provider, ProviderError, ProviderFactory, ProviderRegistry, ProviderSchema,
    ReadRequest, Schema, Type, Value,
};
use infra_engine::{ApplyOptions, Event, Interrupt, Observer, PlanOptions, Workspace};
use infra_lang::Host;

/// Every call the provider saw, in order: `read(3)`, `create thing.a`, ...
type Log = Arc<Mutex<Vec<String>>>;

/// What exists in the backend: objects by id, and the marker each carries.
#[derive(Default)]
struct Backend {
    objects: BTreeMap<String, Value>,
    markers: BTreeMap<String, String>,
    /// Ids a killed run's request made after that run's last look: not
    /// listed by `adopt` until a create runs into them.
    late: std::collections::BTreeSet<String>,
    /// Ids listed but not usable yet (Docker's container still being made):
    /// the first update answers that the name is taken.
    settling: std::collections::BTreeSet<String>,
    /// The `value` of each earlier revision the last operation on an address
    /// was told state keeps (`OperationContext::kept`).
    kept: BTreeMap<String, Vec<String>>,
}

fn note_kept(backend: &Shared, ctx: &OperationContext) {
    let values = ctx.kept.iter().map(|k| k.text("value").to_string()).collect();
    backend.lock().expect("backend").kept.insert(ctx.address.to_string(), values);
}

type Shared = Arc<Mutex<Backend>>;

struct MemFactory {
    schema: ProviderSchema,
    log: Log,
    backend: Shared,
}

struct Mem {
    prefix: String,
    log: Log,
    backend: Shared,
}

fn thing_schema() -> Schema {
    Schema::new("a thing")
        .attribute("name", AttributeSchema::required(Type::String).force_new())
        .attribute("value", AttributeSchema::optional(Type::String))
        .attribute("fail", AttributeSchema::optional(Type::Bool))
        .attribute("unreachable", AttributeSchema::optional(Type::Bool))
        .attribute("id", AttributeSchema::computed(Type::String))
}

#[async_trait]
impl ProviderFactory for MemFactory {
    fn schema(&self) -> &ProviderSchema {
        &self.schema
    }

    async fn configure(&self, config: &Value) -> Result<Arc<dyn Provider>, ProviderError> {
        // As an engine reached through a server cannot be before the server's address is known.
        if config.get("prefix").is_some_and(|p| !p.is_wholly_known()) {
            return Err(ProviderError::failed("the prefix is not known yet"));
        }
        let prefix = config.get("prefix").and_then(Value::as_str).unwrap_or("default").to_string();
        Ok(Arc::new(Mem { prefix, log: self.log.clone(), backend: self.backend.clone() }))
    }
}

impl Mem {
    fn log(&self, entry: String) {
        self.log.lock().expect("log").push(entry);
    }
}

#[async_trait]
impl Provider for Mem {
    async fn read(&self, requests: &[ReadRequest]) -> Vec<Result<Option<Value>, ProviderError>> {
        self.log(format!("read({})", requests.len()));
        let backend = self.backend.lock().expect("backend");
        requests
            .iter()
            .map(|r| Ok(r.state.get("id").and_then(Value::as_str).and_then(|id| backend.objects.get(id).cloned())))
            .collect()
    }

    async fn create(&self, ctx: &OperationContext, _kind: &str, planned: &Value) -> Result<Value, ProviderError> {
        self.log(format!("create {}", ctx.address));
        note_kept(&self.backend, ctx);
        if planned.get("fail").and_then(Value::as_bool) == Some(true) {
            return Err(ProviderError::failed("refused on purpose"));
        }
        if planned.get("unreachable").and_then(Value::as_bool) == Some(true) {
            return Err(ProviderError::unavailable("the backend did not answer"));
        }
        let name = planned.get("name").and_then(Value::as_str).unwrap_or_default();
        let id = format!("{}:{name}", self.prefix);
        let mut backend = self.backend.lock().expect("backend");
        if backend.objects.contains_key(&id) {
            backend.late.remove(&id);
            let taken = format!("the name {name} is taken");
            // Taken by something with this state's marker: maybe ours.
            return Err(match backend.markers.get(&id).is_some_and(|m| m.starts_with(&ctx.lineage)) {
                true => ProviderError::conflict(taken),
                false => ProviderError::failed(taken),
            });
        }
        let mut object = planned.unmark().0;
        if let Value::Object(map) = &mut object {
            map.insert("id".into(), Value::string(&id));
        }
        backend.markers.insert(id.clone(), ctx.marker());
        backend.objects.insert(id, object.clone());
        Ok(object)
    }

    async fn update(
        &self,
        ctx: &OperationContext,
        _: &str,
        prior: &Value,
        planned: &Value,
    ) -> Result<Value, ProviderError> {
        self.log(format!("update {}", ctx.address));
        note_kept(&self.backend, ctx);
        let id = prior.get("id").and_then(Value::as_str).unwrap_or_default().to_string();
        if self.backend.lock().expect("backend").settling.remove(&id) {
            return Err(ProviderError::conflict("the name is taken by an object not ready yet"));
        }
        let mut object = planned.unmark().0;
        if let Value::Object(map) = &mut object {
            map.insert("id".into(), Value::string(&id));
        }
        self.backend.lock().expect("backend").objects.insert(id, object.clone());
        Ok(object)
    }

    async fn delete(&self, ctx: &OperationContext, _: &str, prior: &Value) -> Result<(), ProviderError> {
        note_kept(&self.backend, ctx);
        self.log(format!("delete {}", ctx.address));
        if let Some(id) = prior.get("id").and_then(Value::as_str) {
            // As an engine holds only its own containers: one configured
            // elsewhere cannot remove them.
            if !id.starts_with(&format!("{}:", self.prefix)) {
                return Err(ProviderError::failed(format!("{id} is not in {}", self.prefix)));
            }
            let mut backend = self.backend.lock().expect("backend");
            backend.objects.remove(id);
            backend.markers.remove(id);
        }
        Ok(())
    }

    async fn import(&self, _: &OperationContext, _: &str, id: &str) -> Result<Value, ProviderError> {
        let backend = self.backend.lock().expect("backend");
        backend.objects.get(id).cloned().ok_or_else(|| ProviderError::failed("no such object"))
    }

    async fn adopt(&self, ctx: &OperationContext, _: &str, _: &Value) -> Result<Option<Value>, ProviderError> {
        self.log(format!("adopt {}", ctx.address));
        let backend = self.backend.lock().expect("backend");
        let replaced = ctx.replaced_id();
        let marker = ctx.marker();
        Ok(backend
            .markers
            .iter()
            .find(|(id, m)| **m == marker && Some(id.as_str()) != replaced && !backend.late.contains(*id))
            .and_then(|(id, _)| backend.objects.get(id).cloned()))
    }
}

struct Quiet;
impl Observer for Quiet {
    fn event(&self, _: Event) {}
}

struct Harness {
    dir: tempfile::TempDir,
    registry: ProviderRegistry,
    log: Log,
    backend: Shared,
    store: LocalStore,
}

impl Harness {
    fn new() -> Harness {
        let log: Log = Arc::default();
        let backend: Shared = Arc::default();
        let schema = ProviderSchema {
            config: Schema::new("mem").attribute("prefix", AttributeSchema::optional(Type::String)),
            resources: [("thing", thing_schema()), ("release", thing_schema().keeps_revisions())].into_iter().collect(),
        };
        let mut registry = ProviderRegistry::new();
        registry.register("mem", Arc::new(MemFactory { schema, log: log.clone(), backend: backend.clone() }));
        let dir = tempfile::tempdir().expect("tempdir");
        let store = LocalStore::new(dir.path().join("infra.state"));
        Harness { dir, registry, log, backend, store }
    }

    fn take_log(&self) -> Vec<String> {
        std::mem::take(&mut *self.log.lock().expect("log"))
    }

    /// Plans and applies `config`; returns the plan's actions by address.
    fn run(&self, config: &str, mode: PlanMode) -> (BTreeMap<String, Action>, infra_engine::ApplyReport) {
        self.run_with(config, mode, 4)
    }

    /// Writes `config`, loads it (it must be valid) and hands `with` its
    /// workspace and graph.
    fn with_config<T>(&self, config: &str, with: impl FnOnce(&Workspace, &infra_engine::Graph) -> T) -> T {
        std::fs::write(self.dir.path().join("main.infra"), config).expect("write config");
        let (loaded, errors) = infra_lang::load(self.dir.path());
        assert!(errors.is_empty(), "{errors:#?}");
        let host = Host { root: self.dir.path().to_path_buf(), ..Host::default() };
        let ws = Workspace { config: &loaded, registry: &self.registry, host: &host };
        let graph = infra_engine::build_graph(&loaded, &self.registry).expect("graph");
        with(&ws, &graph)
    }

    /// `run`, with this many operations at a time.
    fn run_with(
        &self,
        config: &str,
        mode: PlanMode,
        parallelism: usize,
    ) -> (BTreeMap<String, Action>, infra_engine::ApplyReport) {
        self.with_config(config, |ws, graph| {
            let mut state = self.store.load().expect("state").unwrap_or_default();
            let options = PlanOptions { mode, refresh: true, ..PlanOptions::default() };
            let runtime = tokio::runtime::Runtime::new().expect("runtime");
            let plan = runtime.block_on(infra_engine::plan(ws, graph, &state, &options)).expect("plan");
            let actions = plan.changes.iter().map(|c| (c.address.to_string(), c.action)).collect();
            let apply_options =
                ApplyOptions { parallelism, interrupt: Arc::new(Interrupt::default()), observer: Arc::new(Quiet) };
            let applied = infra_engine::apply(ws, graph, &plan, &mut state, &self.store, &apply_options);
            (actions, runtime.block_on(applied))
        })
    }

    fn state(&self) -> State {
        self.store.load().expect("state").unwrap_or_default()
    }

    /// The ids of every object in the backend.
    fn object_ids(&self) -> Vec<String> {
        self.backend.lock().expect("backend").objects.keys().cloned().collect()
    }

    /// An object a killed run made for `address` and never recorded; `late`:
    /// made after that run's last look, so only a create runs into it.
    fn left_behind(&self, address: &str, name: &str, late: bool) {
        let marker = format!("{}/{address}", self.state().lineage);
        let id = format!("default:{name}");
        let object = Value::object([("name", Value::string(name)), ("id", Value::string(&id))]);
        let mut backend = self.backend.lock().expect("backend");
        backend.objects.insert(id.clone(), object);
        backend.markers.insert(id.clone(), marker);
        if late {
            backend.late.insert(id);
        }
    }
}

fn position(log: &[String], entry: &str) -> usize {
    log.iter().position(|e| e == entry).unwrap_or_else(|| panic!("{entry} not in {log:?}"))
}

#[test]
fn refresh_reads_everything_in_one_call() {
    let h = Harness::new();
    let config = "thing \"t\" {\n  count = 50\n  name  = \"t${count.index}\"\n}\n";
    h.run(config, PlanMode::Normal);
    h.take_log();
    let (actions, _) = h.run(config, PlanMode::Normal);
    assert!(actions.values().all(|a| *a == Action::NoOp));
    let reads: Vec<String> = h.take_log().into_iter().filter(|e| e.starts_with("read")).collect();
    assert_eq!(reads, vec!["read(50)"], "one batched read, not one per resource");
}

#[test]
fn creates_follow_dependencies_and_destroys_reverse_them() {
    let h = Harness::new();
    let config = r#"
thing "base" {
  name = "base"
}

thing "middle" {
  name  = "middle"
  value = thing.base.id
}

thing "top" {
  name  = "top"
  value = thing.middle.id
}
"#;
    let (_, report) = h.run(config, PlanMode::Normal);
    assert!(report.succeeded(), "{:?}", report.errors);
    let log = h.take_log();
    assert!(position(&log, "create thing.base") < position(&log, "create thing.middle"));
    assert!(position(&log, "create thing.middle") < position(&log, "create thing.top"));
    let top = &h.state().resources[&"thing.top".parse().expect("address")];
    assert_eq!(
        top.attributes.get("value"),
        Some(&Value::string("default:middle")),
        "computed ids flow into dependents"
    );

    let (_, report) = h.run(config, PlanMode::Destroy);
    assert!(report.succeeded(), "{:?}", report.errors);
    let log = h.take_log();
    assert!(position(&log, "delete thing.top") < position(&log, "delete thing.middle"));
    assert!(position(&log, "delete thing.middle") < position(&log, "delete thing.base"));
    assert!(h.object_ids().is_empty());
    assert!(h.state().resources.is_empty());
}

#[test]
fn aliased_providers_are_configured_separately() {
    let h = Harness::new();
    let config = r#"
provider "mem" {
  prefix = "eu"
}

provider "mem" {
  alias  = "us"
  prefix = "us"
}

thing "a" {
  name = "a"
}

thing "b" {
  provider = mem.us
  name     = "b"
}
"#;
    let (_, report) = h.run(config, PlanMode::Normal);
    assert!(report.succeeded(), "{:?}", report.errors);
    let objects: Vec<String> = h.object_ids();
    assert_eq!(objects, vec!["eu:a", "us:b"]);
    assert_eq!(h.state().resources[&"thing.b".parse().expect("address")].provider, "mem.us");
}

#[test]
fn create_before_destroy_creates_the_replacement_first() {
    let h = Harness::new();
    let config = |name: &str| {
        format!("thing \"x\" {{\n  name = \"{name}\"\n\n  lifecycle {{\n    create_before_destroy = true\n  }}\n}}\n")
    };
    h.run(&config("one"), PlanMode::Normal);
    h.take_log();
    let (actions, report) = h.run(&config("two"), PlanMode::Normal);
    assert!(report.succeeded(), "{:?}", report.errors);
    assert_eq!(actions["thing.x"], Action::Replace);
    let log: Vec<String> =
        h.take_log().into_iter().filter(|e| !e.starts_with("read") && !e.starts_with("adopt")).collect();
    assert_eq!(log, vec!["create thing.x", "delete thing.x"]);
    let objects: Vec<String> = h.object_ids();
    assert_eq!(objects, vec!["default:two"]);
}

#[test]
fn a_failure_skips_dependents_only_and_state_keeps_the_rest() {
    let h = Harness::new();
    let config = r#"
thing "bad" {
  name = "bad"
  fail = true
}

thing "after_bad" {
  name  = "after"
  value = thing.bad.id
}

thing "fine" {
  name = "fine"
}
"#;
    let (_, report) = h.run(config, PlanMode::Normal);
    assert_eq!(report.errors.len(), 1, "{:?}", report.errors);
    assert!(report.errors[0].message.contains("thing.bad: creating failed: refused on purpose"));
    let log = h.take_log();
    assert!(log.contains(&"create thing.fine".to_string()));
    assert!(!log.contains(&"create thing.after_bad".to_string()));
    let recorded: Vec<String> = h.state().resources.keys().map(ToString::to_string).collect();
    assert_eq!(recorded, vec!["thing.fine"]);
}

#[test]
fn a_backend_that_stops_answering_is_not_tried_again_and_the_rest_goes_on() {
    let h = Harness::new();
    let config = r#"
provider "mem" {
  alias  = "other"
  prefix = "other"
}

thing "a_down" {
  name        = "down"
  unreachable = true
}

thing "b_after" {
  count = 3
  name  = "after${count.index}"
}

thing "c_elsewhere" {
  provider = mem.other
  name     = "elsewhere"
}
"#;
    // One at a time, so the first failure comes before the others start.
    let (_, report) = h.run_with(config, PlanMode::Normal, 1);
    let messages: Vec<&str> = report.errors.iter().map(|d| d.message.as_str()).collect();
    assert_eq!(messages.len(), 2, "one error for the failure, one for what was left out: {messages:#?}");
    assert!(messages[0].contains("thing.a_down: creating failed: the backend did not answer"), "{messages:?}");
    assert_eq!(
        messages[1],
        "3 changes not attempted after provider `mem` stopped answering: thing.b_after[0], thing.b_after[1], thing.b_after[2]"
    );
    let log = h.take_log();
    assert!(!log.iter().any(|e| e.starts_with("create thing.b_after")), "{log:?}");
    assert!(log.contains(&"create thing.c_elsewhere".to_string()), "another provider goes on: {log:?}");
    let recorded: Vec<String> = h.state().resources.keys().map(ToString::to_string).collect();
    assert_eq!(recorded, vec!["thing.c_elsewhere"]);

    // Back again: the next apply does what was left.
    let config = config.replace("unreachable = true", "unreachable = false");
    let (_, report) = h.run_with(&config, PlanMode::Normal, 1);
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    assert_eq!(h.state().resources.len(), 5);
}

#[test]
fn drift_is_planned_back() {
    let h = Harness::new();
    let config = "thing \"x\" {\n  name  = \"x\"\n  value = \"wanted\"\n}\n";
    h.run(config, PlanMode::Normal);
    if let Some(Value::Object(map)) = h.backend.lock().expect("backend").objects.get_mut("default:x") {
        map.insert("value".into(), Value::string("changed by hand"));
    }
    let (actions, report) = h.run(config, PlanMode::Normal);
    assert_eq!(actions["thing.x"], Action::Update);
    assert!(report.succeeded());
    let value = h.backend.lock().expect("backend").objects["default:x"].get("value").cloned();
    assert_eq!(value, Some(Value::string("wanted")));
}

/// The calls an apply made about `thing.a`, reads left out.
fn calls_about_a(log: Vec<String>) -> Vec<String> {
    log.into_iter().filter(|e| e.ends_with(" thing.a")).collect()
}

/// Applied first, so that state has its lineage; each test then adds `thing.a`.
const FIRST: &str = "thing \"first\" {\n  name = \"first\"\n}\n";

fn with_a(name: &str) -> String {
    format!("{FIRST}\nthing \"a\" {{\n  name = \"{name}\"\n}}\n")
}

/// A harness whose state holds `thing.first`, with `thing.a` left behind as
/// `left_behind` says, and an empty log.
fn after_a_crash(name: &str, late: bool) -> Harness {
    let h = Harness::new();
    h.run(FIRST, PlanMode::Normal);
    h.left_behind("thing.a", name, late);
    h.take_log();
    h
}

fn recorded_id(h: &Harness, address: &str) -> Option<Value> {
    h.state().resources.get(&address.parse().expect("address")).and_then(|r| r.attributes.get("id").cloned())
}

#[test]
fn an_object_a_crash_left_behind_is_taken_over_when_it_is_the_one_planned() {
    let h = after_a_crash("a", false);
    let (actions, report) = h.run(&with_a("a"), PlanMode::Normal);
    assert!(report.succeeded(), "{:?}", report.errors);
    assert_eq!(actions["thing.a"], Action::Create, "state never recorded it");
    assert_eq!(calls_about_a(h.take_log()), ["adopt thing.a", "update thing.a"]);
    assert_eq!(h.object_ids(), ["default:a", "default:first"]);
    assert_eq!(recorded_id(&h, "thing.a"), Some(Value::string("default:a")));
}

#[test]
fn an_object_left_behind_that_is_not_the_one_planned_is_replaced() {
    // Made for thing.a under its old name; the configuration has a new one.
    let h = after_a_crash("old", false);
    let (_, report) = h.run(&with_a("new"), PlanMode::Normal);
    assert!(report.succeeded(), "{:?}", report.errors);
    assert_eq!(calls_about_a(h.take_log()), ["adopt thing.a", "delete thing.a", "create thing.a"]);
    assert_eq!(h.object_ids(), ["default:first", "default:new"], "nothing with the lineage left unrecorded");
    assert_eq!(recorded_id(&h, "thing.a"), Some(Value::string("default:new")));
}

#[test]
fn an_object_a_killed_request_made_late_is_found_when_create_runs_into_it() {
    let h = after_a_crash("a", true);
    let (_, report) = h.run(&with_a("a"), PlanMode::Normal);
    assert!(report.succeeded(), "one apply converges: {:?}", report.errors);
    assert_eq!(calls_about_a(h.take_log()), ["adopt thing.a", "create thing.a", "adopt thing.a", "update thing.a"]);
    assert_eq!(h.object_ids(), ["default:a", "default:first"]);
    let (actions, _) = h.run(&with_a("a"), PlanMode::Normal);
    assert!(actions.values().all(|a| *a == Action::NoOp), "{actions:?}");
}

#[test]
fn a_name_taken_by_an_object_not_ours_is_an_error() {
    let h = Harness::new();
    h.run(FIRST, PlanMode::Normal);
    let foreign = Value::object([("name", Value::string("a")), ("id", Value::string("default:a"))]);
    h.backend.lock().expect("backend").objects.insert("default:a".into(), foreign);
    let (_, report) = h.run(&with_a("a"), PlanMode::Normal);
    assert_eq!(report.errors.len(), 1, "{:?}", report.errors);
    assert!(report.errors[0].message.contains("thing.a: creating failed: the name a is taken"), "{:?}", report.errors);
    assert_eq!(recorded_id(&h, "thing.a"), None);
}

#[test]
fn an_object_found_before_it_is_ready_is_taken_over_once_it_is() {
    let h = after_a_crash("a", false);
    h.backend.lock().expect("backend").settling.insert("default:a".into());
    let (_, report) = h.run(&with_a("a"), PlanMode::Normal);
    assert!(report.succeeded(), "one apply converges: {:?}", report.errors);
    assert_eq!(calls_about_a(h.take_log()), ["adopt thing.a", "update thing.a", "adopt thing.a", "update thing.a"]);
    assert_eq!(recorded_id(&h, "thing.a"), Some(Value::string("default:a")));
}

/// A plan of `config` against the stored state, made as `plan -out` makes it.
fn saved_plan(h: &Harness, config: &str) -> infra_core::plan::Plan {
    h.with_config(config, |ws, graph| {
        let options = PlanOptions { refresh: true, ..PlanOptions::default() };
        let runtime = tokio::runtime::Runtime::new().expect("runtime");
        runtime.block_on(infra_engine::plan(ws, graph, &h.state(), &options)).expect("plan")
    })
}

/// What `saved_plan::check` says of `plan` against the stored state and `config` now.
fn check_saved(h: &Harness, plan: &infra_core::plan::Plan, config: &str) -> Result<(), String> {
    h.with_config(config, |ws, _| {
        let stored = h.store.load().expect("state");
        let state = stored.unwrap_or_else(|| State { lineage: plan.lineage.clone(), ..State::new() });
        infra_engine::saved_plan::check(ws.config, plan, &state).map_err(|e| e.to_string())
    })
}

#[test]
fn a_saved_plan_applies_only_to_the_state_and_configuration_it_was_made_from() {
    let h = Harness::new();
    let config = with_a("one");
    let before_any_state = saved_plan(&h, &config);
    assert_eq!(check_saved(&h, &before_any_state, &config), Ok(()));
    h.run(&config, PlanMode::Normal);
    assert_eq!(
        check_saved(&h, &before_any_state, &config).expect_err("refused"),
        "the state was created since the plan was made"
    );
    let changed = with_a("two");
    let plan = saved_plan(&h, &changed);
    assert_eq!(check_saved(&h, &plan, &changed), Ok(()));
    assert_eq!(
        check_saved(&h, &plan, &with_a("three")).expect_err("refused"),
        "the configuration changed since the plan was made"
    );
    let serial = plan.prior_serial;
    h.run(&with_a("four"), PlanMode::Normal);
    let now = h.state().serial;
    assert_eq!(
        check_saved(&h, &plan, &changed).expect_err("refused"),
        format!("the state changed since the plan was made (serial {serial} then, {now} now)")
    );
    let other = infra_core::plan::Plan { lineage: "another".into(), prior_serial: now, ..plan };
    assert_eq!(
        check_saved(&h, &other, &changed).expect_err("refused"),
        "the saved plan was made for a different state (lineage mismatch)"
    );
}

/// `infra import ADDR ID` as the engine does it, against the stored state.
fn import(h: &Harness, config: &str, address: &str, id: &str) -> Result<State, String> {
    h.with_config(config, |ws, graph| {
        let mut state = h.state();
        let address = address.parse().expect("an address");
        let runtime = tokio::runtime::Runtime::new().expect("runtime");
        let variables = BTreeMap::new();
        let imported = infra_engine::import(ws, graph, &h.store, &mut state, &address, id, &variables);
        let messages = |e: Vec<infra_syntax::Diagnostic>| e.iter().map(|d| d.message.clone()).collect::<Vec<_>>();
        runtime.block_on(imported).map_err(|e| messages(e).join("; "))?;
        Ok(state)
    })
}

#[test]
fn an_import_is_recorded_as_the_next_version_and_a_managed_address_is_refused() {
    let h = Harness::new();
    h.run(FIRST, PlanMode::Normal);
    h.left_behind("elsewhere", "found", false);
    let before = h.state().serial;
    let config = with_a("found");
    let imported = import(&h, &config, "thing.a", "default:found").expect("imported");
    let stored = h.state();
    assert_eq!(stored, imported, "what the engine returns is what the store holds");
    assert_eq!(stored.serial, before + 1);
    assert_eq!(recorded_id(&h, "thing.a"), Some(Value::string("default:found")));
    let again = import(&h, &config, "thing.a", "default:found").expect_err("already managed");
    assert_eq!(again, "thing.a is already managed");
    assert_eq!(h.state().serial, before + 1, "a refused import writes nothing");
    let missing = import(&h, &with_a("nothing"), "thing.b", "default:nothing").expect_err("not declared");
    assert!(missing.contains("thing.b is not declared"), "{missing}");
}

// Module instances: `count` and `for_each` on module calls.

/// A module of two things, the second reading the first.
const APP: &str = r#"
variable "name" {}

variable "size" {
  default = "small"
}

thing "server" {
  name  = var.name
  value = var.size
}

thing "site" {
  name  = "${var.name}-site"
  value = thing.server.id
}

output "id" {
  value = thing.server.id
}
"#;

fn with_app(h: &Harness) {
    let dir = h.dir.path().join("app");
    std::fs::create_dir_all(&dir).expect("module dir");
    std::fs::write(dir.join("main.infra"), APP).expect("write module");
}

/// The root calling `app` once per key of `servers` (an object literal).
fn fleet(servers: &str) -> String {
    format!(
        r#"
module "web" {{
  source   = "./app"
  for_each = {servers}
  name     = each.key
  size     = each.value
}}

thing "summary" {{
  name  = "summary"
  value = join(",", [for key, web in module.web : web.id])
}}
"#
    )
}

/// The plan's changes other than no-ops, as `ADDRESS ACTION`.
fn changed(actions: &BTreeMap<String, Action>) -> Vec<String> {
    actions.iter().filter(|(_, a)| **a != Action::NoOp).map(|(address, a)| format!("{address} {a:?}")).collect()
}

fn attribute(h: &Harness, address: &str, name: &str) -> Option<Value> {
    h.state().resources.get(&address.parse().expect("address"))?.attributes.get(name).cloned()
}

#[test]
fn a_module_with_for_each_makes_one_instance_per_key_and_a_removed_key_destroys_only_its_objects() {
    let h = Harness::new();
    with_app(&h);
    let (actions, report) = h.run(&fleet(r#"{ a = "small", b = "large" }"#), PlanMode::Normal);
    assert!(report.succeeded(), "{:?}", report.errors);
    assert_eq!(
        changed(&actions),
        [
            r#"module.web["a"].thing.server Create"#,
            r#"module.web["a"].thing.site Create"#,
            r#"module.web["b"].thing.server Create"#,
            r#"module.web["b"].thing.site Create"#,
            "thing.summary Create",
        ]
    );
    assert_eq!(attribute(&h, r#"module.web["b"].thing.server"#, "value"), Some(Value::string("large")));
    assert_eq!(attribute(&h, r#"module.web["a"].thing.site"#, "value"), Some(Value::string("default:a")));
    assert_eq!(attribute(&h, "thing.summary", "value"), Some(Value::string("default:a,default:b")));

    let (actions, _) = h.run(&fleet(r#"{ a = "small", b = "large" }"#), PlanMode::Normal);
    assert_eq!(changed(&actions), Vec::<String>::new(), "a second run changes nothing");

    h.take_log();
    let (actions, report) = h.run(&fleet(r#"{ a = "small", b = "large", c = "small" }"#), PlanMode::Normal);
    assert!(report.succeeded(), "{:?}", report.errors);
    assert_eq!(
        changed(&actions),
        [r#"module.web["c"].thing.server Create"#, r#"module.web["c"].thing.site Create"#, "thing.summary Update"]
    );

    h.take_log();
    let (actions, report) = h.run(&fleet(r#"{ b = "large", c = "small" }"#), PlanMode::Normal);
    assert!(report.succeeded(), "{:?}", report.errors);
    assert_eq!(
        changed(&actions),
        [r#"module.web["a"].thing.server Delete"#, r#"module.web["a"].thing.site Delete"#, "thing.summary Update"]
    );
    let log = h.take_log();
    assert!(
        position(&log, r#"delete module.web["a"].thing.site"#)
            < position(&log, r#"delete module.web["a"].thing.server"#),
        "what read the server goes first: {log:?}"
    );
    assert_eq!(h.object_ids(), ["default:b", "default:b-site", "default:c", "default:c-site", "default:summary"]);

    let (_, report) = h.run(&fleet(r#"{ b = "large", c = "small" }"#), PlanMode::Destroy);
    assert!(report.succeeded(), "{:?}", report.errors);
    assert!(h.object_ids().is_empty() && h.state().resources.is_empty());
}

#[test]
fn a_module_with_count_is_a_list_of_instances() {
    let h = Harness::new();
    with_app(&h);
    let config = |n: u32| {
        format!(
            "module \"db\" {{\n  source = \"./app\"\n  count  = {n}\n  name   = \"db${{count.index}}\"\n}}\n\n\
             thing \"first\" {{\n  name  = \"first\"\n  value = module.db[0].id\n}}\n"
        )
    };
    let (actions, report) = h.run(&config(2), PlanMode::Normal);
    assert!(report.succeeded(), "{:?}", report.errors);
    assert!(actions.contains_key("module.db[1].thing.site"), "{actions:?}");
    assert_eq!(attribute(&h, "thing.first", "value"), Some(Value::string("default:db0")));
    let (actions, report) = h.run(&config(1), PlanMode::Normal);
    assert!(report.succeeded(), "{:?}", report.errors);
    assert_eq!(changed(&actions), ["module.db[1].thing.server Delete", "module.db[1].thing.site Delete"]);
}

#[test]
fn moving_hand_written_copies_into_a_loop_changes_nothing() {
    let h = Harness::new();
    with_app(&h);
    let copies = "module \"web1\" {\n  source = \"./app\"\n  name   = \"web1\"\n}\n\n\
                  module \"web2\" {\n  source = \"./app\"\n  name   = \"web2\"\n}\n";
    let (_, report) = h.run(copies, PlanMode::Normal);
    assert!(report.succeeded(), "{:?}", report.errors);
    let looped = "module \"web\" {\n  source   = \"./app\"\n  for_each = toset([\"web1\", \"web2\"])\n  \
                  name     = each.key\n}\n\n\
                  moved {\n  from = module.web1\n  to   = module.web[\"web1\"]\n}\n\n\
                  moved {\n  from = module.web2\n  to   = module.web[\"web2\"]\n}\n";
    let (actions, report) = h.run(looped, PlanMode::Normal);
    assert!(report.succeeded(), "{:?}", report.errors);
    assert_eq!(changed(&actions), Vec::<String>::new());
    assert!(actions.contains_key(r#"module.web["web2"].thing.site"#), "{actions:?}");
    assert_eq!(h.object_ids(), ["default:web1", "default:web1-site", "default:web2", "default:web2-site"]);
}

/// Plans `config` with `-target`s; the diagnostics' messages when it fails.
fn plan_targeting(h: &Harness, config: &str, targets: &[&str]) -> Result<Vec<String>, Vec<String>> {
    h.with_config(config, |ws, graph| {
        let targets = targets.iter().map(|t| t.parse().expect("address")).collect();
        let options = PlanOptions { refresh: true, targets, ..PlanOptions::default() };
        let runtime = tokio::runtime::Runtime::new().expect("runtime");
        match runtime.block_on(infra_engine::plan(ws, graph, &h.state(), &options)) {
            Ok(plan) => Ok(plan.changes.iter().map(|c| format!("{} {:?}", c.address, c.action)).collect()),
            Err(errors) => Err(errors.into_iter().map(|d| d.message).collect()),
        }
    })
}

#[test]
fn a_target_names_one_module_instance_and_a_key_it_does_not_make_is_an_error() {
    let h = Harness::new();
    with_app(&h);
    let config = fleet(r#"{ a = "small", b = "large" }"#);
    assert_eq!(
        plan_targeting(&h, &config, &[r#"module.web["b"]"#]),
        Ok(vec![r#"module.web["b"].thing.server Create"#.to_string(), r#"module.web["b"].thing.site Create"#.into()])
    );
    assert_eq!(
        plan_targeting(&h, &config, &[r#"module.web["z"]"#]),
        Err(vec![r#"`-target module.web["z"]` matches nothing"#.to_string()])
    );
}

// Provider configurations with `for_each`.

/// A provider instance per region, chosen per resource and passed to a module per instance.
fn regional(regions: &str) -> String {
    format!(
        r#"
locals {{
  regions = {regions}
}}

provider "mem" {{
  alias    = "region"
  for_each = local.regions
  prefix   = each.value
}}

thing "a" {{
  for_each = local.regions
  provider = mem.region[each.key]
  name     = "a-${{each.key}}"
}}

module "app" {{
  source    = "./app"
  for_each  = local.regions
  providers = {{ mem = mem.region[each.key] }}
  name      = each.key
}}
"#
    )
}

#[test]
fn a_provider_with_for_each_makes_one_configuration_per_key_and_a_removed_key_still_destroys_what_it_made() {
    let h = Harness::new();
    with_app(&h);
    let (_, report) = h.run(&regional(r#"{ eu = "eu", us = "us" }"#), PlanMode::Normal);
    assert!(report.succeeded(), "{:?}", report.errors);
    assert_eq!(h.object_ids(), ["eu:a-eu", "eu:eu", "eu:eu-site", "us:a-us", "us:us", "us:us-site"]);
    let state = h.state();
    let made_by = |address: &str| state.resources[&address.parse().expect("address")].provider.to_string();
    assert_eq!(made_by(r#"thing.a["us"]"#), r#"mem.region["us"]"#);
    assert_eq!(made_by(r#"module.app["eu"].thing.site"#), r#"mem.region["eu"]"#);
    let recorded: Vec<String> = state.providers.keys().map(ToString::to_string).collect();
    assert_eq!(recorded, [r#"mem.region["eu"]"#, r#"mem.region["us"]"#]);

    let (actions, _) = h.run(&regional(r#"{ eu = "eu", us = "us" }"#), PlanMode::Normal);
    assert_eq!(changed(&actions), Vec::<String>::new());

    // `us` leaves the map: its objects go, through the configuration state
    // recorded for it (the mem backend refuses a delete from another prefix).
    let (actions, report) = h.run(&regional(r#"{ eu = "eu" }"#), PlanMode::Normal);
    assert!(report.succeeded(), "{:?}", report.errors);
    assert_eq!(
        changed(&actions),
        [r#"module.app["us"].thing.server Delete"#, r#"module.app["us"].thing.site Delete"#, r#"thing.a["us"] Delete"#]
    );
    assert_eq!(h.object_ids(), ["eu:a-eu", "eu:eu", "eu:eu-site"]);
    let recorded: Vec<String> = h.state().providers.keys().map(ToString::to_string).collect();
    assert_eq!(recorded, [r#"mem.region["eu"]"#], "settings nothing uses are dropped");

    let (_, report) = h.run(&regional(r#"{ eu = "eu" }"#), PlanMode::Destroy);
    assert!(report.succeeded(), "{:?}", report.errors);
    assert!(h.object_ids().is_empty() && h.state().resources.is_empty() && h.state().providers.is_empty());
}

/// Plans `config`; the messages of its diagnostics.
fn plan_errors(h: &Harness, config: &str) -> Vec<String> {
    plan_targeting(h, config, &[]).err().unwrap_or_default()
}

#[test]
fn a_provider_instance_must_be_chosen_and_must_exist() {
    let h = Harness::new();
    with_app(&h);
    let unchosen =
        regional(r#"{ eu = "eu" }"#).replace("  provider = mem.region[each.key]\n", "  provider = mem.region\n");
    let (loaded, _) = {
        std::fs::write(h.dir.path().join("main.infra"), &unchosen).expect("write");
        infra_lang::load(h.dir.path())
    };
    let errors = infra_engine::build_graph(&loaded, &h.registry).err().unwrap_or_default();
    let messages: Vec<&str> = errors.iter().map(|d| d.message.as_str()).collect();
    assert_eq!(messages, ["provider `mem.region` has `for_each`: which instance manages this?"]);

    let missing = regional(r#"{ eu = "eu" }"#)
        .replace("mem.region[each.key]\n  name     = \"a-", "mem.region[\"mars\"]\n  name     = \"a-");
    assert_eq!(
        plan_errors(&h, &missing),
        [r#"thing.a["eu"]: there is no provider configuration `mem.region["mars"]`"#]
    );
}

#[test]
fn an_output_after_an_apply_that_removed_a_key_no_longer_lists_that_instance() {
    let h = Harness::new();
    let config = |keys: &str| {
        format!(
            "thing \"x\" {{\n  for_each = toset({keys})\n  name     = each.key\n}}\n\n\
             output \"names\" {{\n  value = [for key, thing in thing.x : thing.name]\n}}\n"
        )
    };
    h.run(&config(r#"["a", "b"]"#), PlanMode::Normal);
    let (_, report) = h.run(&config(r#"["b"]"#), PlanMode::Normal);
    assert!(report.succeeded(), "{:?}", report.errors);
    assert_eq!(h.state().outputs["names"], Value::List(vec![Value::string("b")]));
}

#[test]
fn a_provider_whose_settings_are_known_only_after_apply_is_configured_then_and_the_plan_says_so() {
    let h = Harness::new();
    let config = r#"
thing "base" {
  name = "base"
}

provider "mem" {
  alias  = "later"
  prefix = thing.base.id
}

thing "x" {
  provider = mem.later
  name     = "x"
}
"#;
    let plan = saved_plan(&h, config);
    let x = plan.changes.iter().find(|c| c.address.to_string() == "thing.x").expect("thing.x planned");
    assert_eq!((x.action, x.reason), (Action::Create, Some(infra_core::plan::ChangeReason::ProviderConfiguredAtApply)));
    let (_, report) = h.run(config, PlanMode::Normal);
    assert!(report.succeeded(), "{:?}", report.errors);
    assert_eq!(h.object_ids(), ["default:base", "default:base:x"], "configured with the value apply made");
    let (actions, _) = h.run(config, PlanMode::Normal);
    assert_eq!(changed(&actions), Vec::<String>::new());
}

#[test]
fn module_instances_nest_and_a_destroy_removes_every_level() {
    let h = Harness::new();
    with_app(&h);
    let middle = h.dir.path().join("tier");
    std::fs::create_dir_all(&middle).expect("module dir");
    std::fs::write(
        middle.join("main.infra"),
        "variable \"name\" {}\n\nmodule \"db\" {\n  source = \"../app\"\n  count  = 2\n  \
         name   = \"${var.name}-db${count.index}\"\n}\n\noutput \"ids\" {\n  value = module.db[*].id\n}\n",
    )
    .expect("write module");
    let config = |keys: &str| {
        format!(
            "module \"tier\" {{\n  source   = \"./tier\"\n  for_each = toset({keys})\n  name     = each.key\n}}\n\n\
             output \"ids\" {{\n  value = {{ for k, t in module.tier : k => t.ids }}\n}}\n"
        )
    };
    let (actions, report) = h.run(&config(r#"["a", "b"]"#), PlanMode::Normal);
    assert!(report.succeeded(), "{:?}", report.errors);
    assert_eq!(actions.len(), 8, "2 tiers × 2 dbs × 2 things: {actions:?}");
    assert!(actions.contains_key(r#"module.tier["b"].module.db[1].thing.site"#), "{actions:?}");
    let outputs = &h.state().outputs["ids"];
    assert_eq!(
        outputs.get("b").and_then(Value::as_list).map(<[Value]>::len),
        Some(2),
        "each tier's output lists its dbs: {outputs:?}"
    );
    let (actions, report) = h.run(&config(r#"["b"]"#), PlanMode::Normal);
    assert!(report.succeeded(), "{:?}", report.errors);
    assert_eq!(changed(&actions).len(), 4, "only tier a's four things go: {actions:?}");
    assert!(h.object_ids().iter().all(|id| id.starts_with("default:b-")), "{:?}", h.object_ids());
    let (_, report) = h.run(&config(r#"["b"]"#), PlanMode::Destroy);
    assert!(report.succeeded(), "{:?}", report.errors);
    assert!(h.object_ids().is_empty() && h.state().resources.is_empty());
}

fn rollback(h: &Harness, config: &str, address: &str, number: usize) -> Result<BTreeMap<String, Action>, String> {
    h.with_config(config, |ws, graph| {
        let mut state = h.state();
        let address = address.parse().expect("an address");
        let runtime = tokio::runtime::Runtime::new().expect("runtime");
        let variables = BTreeMap::new();
        let planned = infra_engine::rollback::plan(ws, graph, &state, &address, number, &variables);
        let messages = |e: Vec<infra_syntax::Diagnostic>| e.iter().map(|d| d.message.clone()).collect::<Vec<_>>();
        let plan = runtime.block_on(planned).map_err(|e| messages(e).join("; "))?;
        let options =
            ApplyOptions { parallelism: 4, interrupt: Arc::new(Interrupt::default()), observer: Arc::new(Quiet) };
        let report = runtime.block_on(infra_engine::apply(ws, graph, &plan, &mut state, &h.store, &options));
        assert!(report.succeeded(), "{:?}", report.errors);
        Ok(plan.changes.iter().map(|c| (c.address.to_string(), c.action)).collect())
    })
}

fn kept_values(h: &Harness, address: &str) -> Vec<String> {
    let address = address.parse().expect("an address");
    h.state().resources[&address].revisions.iter().map(|r| r.text("value").to_string()).collect()
}

#[test]
fn a_rollback_puts_back_an_earlier_revision_and_a_second_one_returns() {
    let h = Harness::new();
    let config = |release: &str, other: &str| {
        format!(
            "release \"web\" {{\n  name  = \"web\"\n  value = \"{release}\"\n}}\n\
             thing \"other\" {{\n  name  = \"other\"\n  value = \"{other}\"\n}}\n"
        )
    };
    for version in ["v1", "v2", "v3", "v4"] {
        assert!(h.run(&config(version, "a"), PlanMode::Normal).1.succeeded());
    }
    assert_eq!(kept_values(&h, "release.web"), ["v3", "v2", "v1"], "newest first, three at most");
    assert_eq!(h.backend.lock().expect("backend").kept["release.web"], ["v3", "v2", "v1"], "the provider was told");
    assert!(kept_values(&h, "thing.other").is_empty(), "a type that keeps no revisions has none");

    // A change waiting in the configuration elsewhere is not part of a rollback.
    let pending = config("v4", "b");
    let actions = rollback(&h, &pending, "release.web", 1).expect("rolled back");
    assert_eq!(changed(&actions), ["release.web Update"]);
    assert_eq!(attribute(&h, "release.web", "value"), Some(Value::string("v3")));
    assert_eq!(attribute(&h, "thing.other", "value"), Some(Value::string("a")));
    assert_eq!(kept_values(&h, "release.web"), ["v4", "v2", "v1"], "v3 is current, so no longer kept");

    rollback(&h, &pending, "release.web", 1).expect("rolled back again");
    assert_eq!(attribute(&h, "release.web", "value"), Some(Value::string("v4")), "twice returns");
    rollback(&h, &pending, "release.web", 3).expect("an older one");
    assert_eq!(attribute(&h, "release.web", "value"), Some(Value::string("v1")));
    assert_eq!(kept_values(&h, "release.web"), ["v4", "v3", "v2"]);

    let refused = |address: &str, number: usize| rollback(&h, &pending, address, number).expect_err("refused");
    assert_eq!(refused("release.web", 4), "release.web has no revision 4: state keeps 3 (1 is the newest)");
    assert_eq!(refused("thing.other", 1), "`thing` resources keep no earlier revisions");
    assert_eq!(refused("release.gone", 1), "release.gone is not in state");

    // The configuration still says v4: the next apply rolls forward, and destroy lets every revision go.
    let (actions, _) = h.run(&pending, PlanMode::Normal);
    assert_eq!(changed(&actions), ["release.web Update", "thing.other Update"]);
    assert_eq!(attribute(&h, "release.web", "value"), Some(Value::string("v4")));
    h.run(&pending, PlanMode::Destroy);
    assert!(h.backend.lock().expect("backend").kept["release.web"].is_empty(), "destroy keeps nothing");
}

#[test]
fn a_replacement_keeps_the_revisions_of_the_object_it_replaces() {
    let h = Harness::new();
    let config =
        |name: &str, value: &str| format!("release \"web\" {{\n  name  = \"{name}\"\n  value = \"{value}\"\n}}\n");
    h.run(&config("a", "v1"), PlanMode::Normal);
    h.run(&config("a", "v2"), PlanMode::Normal);
    // A new name forces a replacement: deleted first, then made anew.
    let (actions, report) = h.run(&config("b", "v3"), PlanMode::Normal);
    assert!(report.succeeded(), "{:?}", report.errors);
    assert_eq!(changed(&actions), ["release.web Replace"]);
    assert_eq!(kept_values(&h, "release.web"), ["v2", "v1"], "the older revision survives the delete");
    assert_eq!(h.backend.lock().expect("backend").kept["release.web"], ["v2", "v1"], "and the create was told");

    let actions = rollback(&h, &config("b", "v3"), "release.web", 1).expect("rolled back");
    assert_eq!(changed(&actions), ["release.web Replace"]);
    assert_eq!(attribute(&h, "release.web", "name"), Some(Value::string("a")));
    assert_eq!(kept_values(&h, "release.web"), ["v3", "v1"]);
}
