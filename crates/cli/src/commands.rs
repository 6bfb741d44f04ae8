//! One function per command: parse what the user gave, call the library, render.

use std::io::{BufRead, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use infra_core::plan::{Plan, PlanMode};
use infra_core::state::{LockGuard, State, StateStore};
use infra_core::{ResourceAddress, Value};
use infra_engine::{ApplyOptions, Inspected, Inspection, Interrupt, PlanOptions, saved_plan};

use crate::args::{
    ApplyArgs, Cli, Command, FmtArgs, Format, Global, OutputArgs, PlanArgs, PlanCommon, ShowArgs, VarArgs,
};
use crate::context::{Session, lock, open_state, parse_addresses, parse_duration};
use crate::progress::Progress;
use crate::render::{self, Paint, paint};
use crate::report::{CliError, Outcome, Status};
use crate::state_commands::{env_command, init, state_command};

pub fn run(cli: Cli) -> Result<Status, (CliError, bool)> {
    let no_color = cli.global.no_color;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| (CliError::message(format!("cannot start the runtime: {e}")), no_color))?;
    runtime.block_on(dispatch(cli)).map_err(|e| (e, no_color))
}

async fn dispatch(cli: Cli) -> Outcome {
    let global = cli.global;
    if let Some(dir) = &global.chdir {
        std::env::set_current_dir(dir)
            .map_err(|e| CliError::message(format!("cannot switch to -chdir {}: {e}", dir.display())))?;
    }
    if matches!(cli.command, Command::KeepSsh) {
        return infra_ssh::persist::serve().await.map(|()| Status::Ok).map_err(CliError::message);
    }
    if let Ok(program) = std::env::current_exe() {
        infra_ssh::persist::enable(program, vec!["__keep-ssh".to_string()]).map_err(CliError::message)?;
    }
    match cli.command {
        Command::KeepSsh => Ok(Status::Ok),
        Command::Init(args) => init(&global, &args),
        Command::Env(command) => env_command(&global, command),
        Command::Validate => validate(&global),
        Command::Fmt(args) => fmt(&global, &args),
        Command::New(args) => {
            let (files, next) = crate::new::new(&args.dir, args.template)?;
            let dir = crate::report::display_path(&args.dir);
            println!("Created {dir} ({files} files). Next:\n  cd {dir}\n  infra validate\n  {next}");
            Ok(Status::Ok)
        }
        Command::Convert(crate::args::ConvertCommand::Compose(args)) => convert_compose(&args),
        Command::Lsp => {
            infra_lsp::run_stdio(crate::context::registry()).map_err(|e| CliError::message(e.to_string()))?;
            Ok(Status::Ok)
        }
        Command::Plan(args) => plan(&global, &args).await,
        Command::Apply(args) => {
            let mode = if args.common.refresh_only { PlanMode::RefreshOnly } else { PlanMode::Normal };
            apply(&global, &args, mode).await
        }
        Command::Drift(args) => plan(&global, &args.into_plan_args()).await,
        Command::Destroy(args) => apply(&global, &args, PlanMode::Destroy).await,
        Command::Show(args) => show(&global, &args),
        Command::Output(args) => output(&global, &args),
        Command::Graph => graph(&global),
        Command::Import(args) => import(&global, &args).await,
        Command::Rollback(args) => rollback(&global, &args).await,
        Command::State(command) => state_command(&global, command),
        Command::Logs { address, lines, vars } => inspect(&global, &address, &vars, Inspection::Logs { lines }).await,
        Command::Backup(command) => {
            let (action, args) = command.parts();
            inspect(&global, &args.address, &args.vars, Inspection::Act { action, args: &[] }).await
        }
        Command::Restore { address, snapshot, to, vars } => {
            let mut args: Vec<(String, String)> = to.map(|to| ("to".to_string(), to)).into_iter().collect();
            args.extend(snapshot.map(|s| ("snapshot".to_string(), s)));
            inspect(&global, &address, &vars, Inspection::Act { action: "restore", args: &args }).await
        }
        Command::Exec { address, command, vars } => {
            inspect(&global, &address, &vars, Inspection::Exec { argv: &command }).await
        }
        Command::ForceUnlock { lock_id } => {
            let (_, store) = open_state(&global)?;
            store.force_unlock(&lock_id)?;
            println!("The state lock was cleared. infra can be used again.");
            Ok(Status::Ok)
        }
    }
}

fn validate(global: &Global) -> Outcome {
    let (session, graph) = Session::open(global)?;
    let errors = infra_engine::validate(&session.workspace(), &graph);
    if !errors.is_empty() {
        return Err(session.config_error(errors));
    }
    let files = session.config.sources.files().count();
    let resources: usize = session.config.modules.iter().map(|m| m.resources.len()).sum();
    println!("{} The configuration is valid ({files} files, {resources} resources).", paint(global).green("Success!"));
    Ok(Status::Ok)
}

/// Compose's own file names, in the order `docker compose` looks for them.
const COMPOSE_FILES: [&str; 4] = ["compose.yaml", "compose.yml", "docker-compose.yaml", "docker-compose.yml"];

fn convert_compose(args: &crate::args::ComposeArgs) -> Outcome {
    let file = match &args.file {
        Some(file) => file.clone(),
        None => COMPOSE_FILES.iter().map(PathBuf::from).find(|f| f.is_file()).ok_or_else(|| {
            CliError::with_help(
                "no compose file here",
                format!("name one, or run this where one of {} is", COMPOSE_FILES.join(", ")),
            )
        })?,
    };
    let text = std::fs::read_to_string(&file)
        .map_err(|e| CliError::message(format!("cannot read {}: {e}", file.display())))?;
    let directory =
        std::fs::canonicalize(&file).ok().and_then(|p| Some(p.parent()?.file_name()?.to_string_lossy().into_owned()));
    let mut conversion = infra_compose::convert(&text, directory.as_deref().unwrap_or("project"))
        .map_err(|e| CliError::message(format!("{}: {e}", file.display())))?;
    let dotenv = file.parent().map(|dir| dir.join(".env")).and_then(|env| std::fs::read_to_string(env).ok());
    conversion.notes.extend(dotenv.and_then(|text| conversion.dotenv_note(&text)));
    match &args.out {
        Some(out) => {
            let mut target = std::fs::OpenOptions::new().write(true).create_new(true).open(out).map_err(|e| {
                CliError::message(format!(
                    "cannot write {}: {e} (infra convert never overwrites a file)",
                    out.display()
                ))
            })?;
            std::io::Write::write_all(&mut target, conversion.text.as_bytes())
                .map_err(|e| CliError::message(format!("cannot write {}: {e}", out.display())))?;
            eprintln!("Wrote {}.", out.display());
        }
        None => print!("{}", conversion.text),
    }
    for note in &conversion.notes {
        eprintln!("not carried over: {}: {}", note.place, note.reason);
    }
    Ok(Status::Ok)
}

fn fmt(global: &Global, args: &FmtArgs) -> Outcome {
    let roots = if args.paths.is_empty() { vec![crate::context::config_dir(global)] } else { args.paths.clone() };
    let mut files = Vec::new();
    for root in roots {
        if root.is_dir() {
            let mut found: Vec<PathBuf> = std::fs::read_dir(&root)
                .map_err(|e| CliError::message(format!("cannot read {}: {e}", root.display())))?
                .filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|x| x == "infra" || x == "infravars"))
                .collect();
            found.sort();
            files.extend(found);
        } else {
            files.push(root);
        }
    }
    let mut sources = infra_syntax::SourceMap::new();
    let mut diagnostics = Vec::new();
    let mut unformatted = Vec::new();
    for path in &files {
        let text = std::fs::read_to_string(path)
            .map_err(|e| CliError::message(format!("cannot read {}: {e}", path.display())))?;
        let id = sources.add(path.clone(), text.as_str());
        if let Err(errors) = infra_syntax::parse(id, &text) {
            diagnostics.extend(errors);
            continue;
        }
        let formatted = infra_syntax::format::format(&text);
        if formatted != text {
            unformatted.push(crate::report::display_path(path));
            if !args.check {
                std::fs::write(path, formatted)
                    .map_err(|e| CliError::message(format!("cannot write {}: {e}", path.display())))?;
            }
        }
    }
    for path in &unformatted {
        println!("{path}");
    }
    if !diagnostics.is_empty() {
        return Err(CliError::Config { sources, diagnostics });
    }
    Ok(if args.check && !unformatted.is_empty() { Status::Unformatted } else { Status::Ok })
}

struct Prepared {
    session: Session,
    graph: infra_engine::Graph,
    variables: std::collections::BTreeMap<String, Value>,
    store: Box<dyn StateStore>,
}

impl Prepared {
    fn lock(&self, operation: &str, timeout: &str) -> Result<Box<dyn LockGuard>, CliError> {
        lock(self.store.as_ref(), operation, parse_duration(timeout)?)
    }

    fn load_state(&self) -> Result<State, CliError> {
        Ok(self.store.load()?.unwrap_or_default())
    }
}

/// The configuration, its graph, the root variables given and the state store.
fn prepare(global: &Global, vars: &VarArgs) -> Result<Prepared, CliError> {
    let (mut session, graph) = Session::open(global)?;
    let store = session.state_store(global)?;
    match session.root_variables(vars) {
        Ok(variables) => Ok(Prepared { session, graph, variables, store }),
        Err(diagnostics) => Err(session.config_error(diagnostics)),
    }
}

fn plan_options(
    common: &PlanCommon,
    mode: PlanMode,
    variables: std::collections::BTreeMap<String, Value>,
) -> Result<PlanOptions, CliError> {
    Ok(PlanOptions {
        mode,
        refresh: common.refresh,
        targets: parse_addresses(&common.target)?,
        replace: parse_addresses(&common.replace)?,
        variables,
        restore: Default::default(),
    })
}

async fn make_plan(p: Prepared, state: &State, options: &PlanOptions) -> Result<(Prepared, Plan), CliError> {
    let result = infra_engine::plan(&p.session.workspace(), &p.graph, state, options).await;
    match result {
        Ok(plan) => Ok((p, plan)),
        Err(diagnostics) => Err(p.session.config_error(diagnostics)),
    }
}

fn print_plan(plan: &Plan, format: Format, paint: Paint, full: bool) {
    match format {
        Format::Human => render::human::print_plan(plan, paint),
        Format::Json => print!("{}", render::json::plan(plan)),
        Format::Markdown => {
            print!("{}", render::markdown::plan(plan, (!full).then_some(render::markdown::COMMENT_LIMIT)))
        }
    }
}

async fn plan(global: &Global, args: &PlanArgs) -> Outcome {
    let prepared = prepare(global, &args.vars)?;
    let mode = match (args.destroy, args.common.refresh_only) {
        (true, true) => return Err(CliError::message("-destroy and -refresh-only cannot be combined")),
        (true, false) => PlanMode::Destroy,
        (false, true) => PlanMode::RefreshOnly,
        (false, false) => PlanMode::Normal,
    };
    let options = plan_options(&args.common, mode, prepared.variables.clone())?;
    let _lock = prepared.lock("plan", &args.common.lock_timeout)?;
    let state = prepared.load_state()?;
    let (prepared, plan) = make_plan(prepared, &state, &options).await?;
    print_plan(&plan, args.format, paint(global), args.full);
    if let Some(out) = &args.out {
        write_plan_file(out, &plan)?;
        if args.format == Format::Human {
            println!("\nSaved the plan to {}. Apply exactly it with: infra apply {}", out.display(), out.display());
        }
    }
    let status = if args.detailed_exitcode && plan.has_changes() { Status::Changes } else { Status::Ok };
    left_to_exit((prepared, state, plan));
    Ok(status)
}

/// What a command holds when it is done and the process is about to end:
/// freeing a plan of 100 000 resources piece by piece takes a tenth of the
/// run, and the system takes the memory back at once on exit. The lock is not
/// among it: its guard is dropped (and the lock released) as usual.
fn left_to_exit<T>(value: T) {
    std::mem::forget(value);
}

fn write_plan_file(path: &Path, plan: &Plan) -> Result<(), CliError> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| CliError::message(format!("cannot write the plan to {}: {e}", path.display())))?;
    file.write_all(&plan.encode())
        .map_err(|e| CliError::message(format!("cannot write the plan to {}: {e}", path.display())))
}

fn read_plan_file(path: &Path) -> Result<Plan, CliError> {
    let bytes =
        std::fs::read(path).map_err(|e| CliError::message(format!("cannot read the plan {}: {e}", path.display())))?;
    Plan::decode(&bytes).map_err(|e| {
        CliError::with_help(format!("{}: {e}", path.display()), "make a new one with `infra plan -out FILE`")
    })
}

fn confirm(mode: PlanMode) -> Result<bool, CliError> {
    if !std::io::stdin().is_terminal() {
        return Err(CliError::with_help(
            "cannot ask for confirmation: standard input is not a terminal",
            "review the plan and pass -auto-approve, or apply a saved plan with `infra apply FILE`",
        ));
    }
    let question = match mode {
        PlanMode::Normal => "Do you want to perform these actions?",
        PlanMode::Destroy => "Do you really want to destroy all resources?",
        PlanMode::RefreshOnly => "Would you like to record these changes made outside infra in state?",
    };
    print!("\n{question}\n  Only 'yes' will be accepted to approve.\n\n  Enter a value: ");
    let _ = std::io::stdout().flush();
    let mut answer = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut answer)
        .map_err(|e| CliError::message(format!("cannot read the answer: {e}")))?;
    Ok(answer.trim() == "yes")
}

async fn apply(global: &Global, args: &ApplyArgs, mode: PlanMode) -> Outcome {
    if mode == PlanMode::Destroy && args.common.refresh_only {
        return Err(CliError::message("-refresh-only cannot be combined with destroy"));
    }
    let prepared = prepare(global, &args.vars)?;
    let saved = match &args.plan_file {
        Some(file) => {
            let mut plan = read_plan_file(file)?;
            saved_plan::unseal_variables(&mut plan, &prepared.variables).map_err(saved_plan_error)?;
            Some(plan)
        }
        None => None,
    };
    let operation = if mode == PlanMode::Destroy { "destroy" } else { "apply" };
    let _lock = prepared.lock(operation, &args.common.lock_timeout)?;
    let stored = prepared.store.load()?;
    let (prepared, plan, mut state) = match saved {
        Some(mut plan) => {
            let ready = saved_plan::ready(&prepared.session.workspace(), &prepared.graph, &mut plan, stored).await;
            match ready {
                Ok(state) => (prepared, plan, state),
                Err(saved_plan::SavedPlanError::Replan(diagnostics)) => {
                    return Err(prepared.session.config_error(diagnostics));
                }
                Err(e) => return Err(saved_plan_error(e)),
            }
        }
        None => {
            let state = stored.unwrap_or_default();
            let options = plan_options(&args.common, mode, prepared.variables.clone())?;
            let (prepared, plan) = make_plan(prepared, &state, &options).await?;
            render::human::print_plan(&plan, paint(global));
            if !plan.has_changes() {
                return Ok(Status::Ok);
            }
            approve(mode, args.auto_approve)?;
            (prepared, plan, state)
        }
    };
    execute(global, args.common.parallelism, prepared, &plan, &mut state).await?;
    Ok(Status::Ok)
}

/// Asks before a fresh plan is applied, unless -auto-approve said yes.
fn approve(mode: PlanMode, auto_approve: bool) -> Result<(), CliError> {
    if !auto_approve && !confirm(mode)? {
        println!("\nApply cancelled.");
        return Err(CliError::message("apply cancelled: the answer was not `yes`"));
    }
    Ok(())
}

/// Applies an approved plan, state backed up first, and prints how it went.
async fn execute(
    global: &Global,
    parallelism: usize,
    prepared: Prepared,
    plan: &Plan,
    state: &mut State,
) -> Result<(), CliError> {
    prepared.store.backup()?;
    let report = run_apply(global, parallelism, &prepared, plan, state).await;
    if !report.errors.is_empty() {
        return Err(prepared.session.config_error(report.errors));
    }
    if report.interrupted {
        return Err(CliError::with_help(
            "apply interrupted: operations that had started finished and were saved; the rest did not run",
            "run `infra apply` again to finish",
        ));
    }
    // A saved plan says what it is: a refresh-only plan records, a destroy plan destroys.
    print_applied(paint(global), plan.mode, &report, state);
    Ok(())
}

/// Runs the apply with progress on screen and Ctrl-C turned into a graceful stop.
async fn run_apply(
    global: &Global,
    parallelism: usize,
    prepared: &Prepared,
    plan: &Plan,
    state: &mut State,
) -> infra_engine::ApplyReport {
    let interrupt = Arc::new(Interrupt::default());
    let watcher = {
        let interrupt = interrupt.clone();
        tokio::spawn(async move {
            while tokio::signal::ctrl_c().await.is_ok() {
                eprintln!(
                    "\nInterrupt received: no new operations will start; waiting for running ones, then saving state."
                );
                interrupt.trigger();
            }
        })
    };
    let progress = Arc::new(Progress::new(std::io::stdout().is_terminal(), paint(global)));
    let options = ApplyOptions { parallelism, interrupt, observer: progress.clone() };
    println!();
    let ws = prepared.session.workspace();
    let report = infra_engine::apply(&ws, &prepared.graph, plan, state, prepared.store.as_ref(), &options).await;
    watcher.abort();
    print!("{}", progress.recap());
    report
}

/// The closing lines of a successful apply: the counts, then the outputs.
fn print_applied(paint: Paint, mode: PlanMode, report: &infra_engine::ApplyReport, state: &State) {
    if mode == PlanMode::RefreshOnly {
        let accepted = format!("State updated: {} resource(s) now recorded as found.", report.accepted);
        println!("\n{}", paint.green(&accepted));
        return;
    }
    let verb = if mode == PlanMode::Destroy { "Destroy" } else { "Apply" };
    let forgotten = match report.forgotten {
        0 => String::new(),
        n => format!(", {n} forgotten (left in place)"),
    };
    println!(
        "\n{}",
        paint.green(&format!(
            "{verb} complete! Resources: {} added, {} changed, {} destroyed{forgotten}.",
            report.added, report.changed, report.destroyed
        ))
    );
    if !state.outputs.is_empty() {
        println!("\nOutputs:\n");
        for (name, value) in &state.outputs {
            println!("{name} = {}", render::human::inline(value));
        }
    }
}

fn saved_plan_error(e: saved_plan::SavedPlanError) -> CliError {
    CliError::with_help(e.to_string(), e.help())
}

fn show(global: &Global, args: &ShowArgs) -> Outcome {
    match &args.plan_file {
        Some(file) => {
            let plan = read_plan_file(file)?;
            print_plan(&plan, args.format, paint(global), args.full);
        }
        None => {
            let (_, store) = open_state(global)?;
            let state = store.load()?.unwrap_or_default();
            print!("{}", render::human::state(&state, paint(global)));
        }
    }
    Ok(Status::Ok)
}

fn output(global: &Global, args: &OutputArgs) -> Outcome {
    let (_, store) = open_state(global)?;
    let state = store.load()?.unwrap_or_default();
    match &args.name {
        Some(name) => {
            let value = state.outputs.get(name).ok_or_else(|| {
                let help = infra_lang::did_you_mean(name, state.outputs.keys().map(String::as_str))
                    .map_or_else(|| "run `infra output` to list them".to_string(), |s| format!("did you mean `{s}`?"));
                CliError::with_help(format!("no output named `{name}` in state"), help)
            })?;
            let (bare, _) = value.unmark();
            match (args.raw, &bare) {
                (true, Value::String(s)) => print!("{s}"),
                _ if args.json || args.raw => println!("{}", bare.to_json()),
                _ => println!("{}", render::human::inline(&bare)),
            }
        }
        None if args.json => {
            let all: serde_json::Map<String, serde_json::Value> = state
                .outputs
                .iter()
                .map(|(k, v)| {
                    // A secret is printed only when asked for by name.
                    let value = render::json::redacted(v);
                    (k.clone(), serde_json::json!({ "value": value, "sensitive": v.contains_sensitive() }))
                })
                .collect();
            println!("{}", serde_json::to_string_pretty(&all).unwrap_or_default());
        }
        None => {
            for (name, value) in &state.outputs {
                println!("{name} = {}", render::human::inline(value));
            }
        }
    }
    Ok(Status::Ok)
}

fn graph(global: &Global) -> Outcome {
    let (session, graph) = Session::open(global)?;
    let name = |i| infra_engine::describe_node(&session.config, &graph.graph[i]);
    let mut out = String::from("digraph infra {\n  rankdir = \"RL\";\n  node [shape = box];\n");
    let mut nodes: Vec<String> = graph.graph.node_indices().map(|i| format!("  \"{}\";\n", name(i))).collect();
    nodes.sort();
    out.extend(nodes);
    let mut edges: Vec<String> = graph
        .graph
        .edge_indices()
        .filter_map(|e| graph.graph.edge_endpoints(e))
        .map(|(dependency, dependent)| format!("  \"{}\" -> \"{}\";\n", name(dependent), name(dependency)))
        .collect();
    edges.sort();
    out.extend(edges);
    out.push_str("}\n");
    print!("{out}");
    Ok(Status::Ok)
}

async fn import(global: &Global, args: &crate::args::ImportArgs) -> Outcome {
    let address: ResourceAddress = parse_addresses(std::slice::from_ref(&args.address))?.remove(0);
    let prepared = prepare(global, &args.vars)?;
    let _lock = prepared.lock("import", &args.lock_timeout)?;
    let mut state = prepared.load_state()?;
    let ws = prepared.session.workspace();
    let store = prepared.store.as_ref();
    match infra_engine::import(&ws, &prepared.graph, store, &mut state, &address, &args.id, &prepared.variables).await {
        Ok(()) => {
            println!("{address}: imported. Run `infra plan` to see how it differs from the configuration.");
            Ok(Status::Ok)
        }
        Err(diagnostics) => Err(prepared.session.config_error(diagnostics)),
    }
}

async fn rollback(global: &Global, args: &crate::args::RollbackArgs) -> Outcome {
    let address: ResourceAddress = parse_addresses(std::slice::from_ref(&args.address))?.remove(0);
    let prepared = prepare(global, &args.vars)?;
    let _lock = prepared.lock("rollback", &args.lock_timeout)?;
    let mut state = prepared.load_state()?;
    if args.list {
        let listed = infra_engine::rollback::revisions(&prepared.session.workspace(), &state, &address);
        let revisions = listed.map_err(|d| prepared.session.config_error(vec![d]))?;
        print!("{}", render::human::revisions(&address, &revisions));
        return Ok(Status::Ok);
    }
    let (ws, graph, variables) = (prepared.session.workspace(), &prepared.graph, &prepared.variables);
    let planned = infra_engine::rollback::plan(&ws, graph, &state, &address, args.to, variables).await;
    let plan = match planned {
        Ok(plan) => plan,
        Err(diagnostics) => return Err(prepared.session.config_error(diagnostics)),
    };
    render::human::print_plan(&plan, paint(global));
    if !plan.has_changes() {
        println!("\n{address} already is as revision {} recorded it.", args.to);
        return Ok(Status::Ok);
    }
    approve(PlanMode::Normal, args.auto_approve)?;
    execute(global, args.parallelism, prepared, &plan, &mut state).await?;
    println!(
        "\n{address} is back as revision {} recorded it. The configuration still describes the newer one: the \
         next `infra apply` rolls forward again unless you change the configuration to match; `infra rollback \
         {address}` again returns.",
        args.to
    );
    Ok(Status::Ok)
}

async fn inspect(global: &Global, address: &str, vars: &VarArgs, inspection: Inspection<'_>) -> Outcome {
    let address: ResourceAddress = parse_addresses(&[address.to_string()])?.remove(0);
    let prepared = prepare(global, vars)?;
    let state = prepared.load_state()?;
    let found = infra_engine::inspect(
        &prepared.session.workspace(),
        &prepared.graph,
        &state,
        &address,
        inspection,
        &prepared.variables,
    )
    .await;
    match found {
        Ok(Inspected::Logs(text)) => {
            print!("{text}");
            Ok(Status::Ok)
        }
        Ok(Inspected::Exec(output) | Inspected::Act(output)) => {
            let _ = std::io::stdout().write_all(&output.stdout);
            let _ = std::io::stderr().write_all(&output.stderr);
            Ok(match output.exit_code {
                0 => Status::Ok,
                code => Status::Code(u8::try_from(code).unwrap_or(1)),
            })
        }
        Err(diagnostics) => Err(prepared.session.config_error(diagnostics)),
    }
}
