//! Procedural macros of the **instrument** toolkit: [`macro@workflow_span`].
//!
//! Use it through the facade (`instrument::workflow_span`); the expansion calls the
//! documented, unit-tested run time in `instrument_core::work`.
#![warn(missing_docs)]
#![deny(unreachable_pub)]
#![forbid(unsafe_code)]

use proc_macro::TokenStream;
use proc_macro2::{Span, TokenStream as TokenStream2};
use quote::{format_ident, quote, quote_spanned, ToTokens};
use syn::ext::IdentExt as _;
use syn::parse::{Parse, ParseStream};
use syn::punctuated::Punctuated;
use syn::spanned::Spanned as _;
use syn::visit_mut::{self, VisitMut};
use syn::{
    parse_quote, Block, Expr, Ident, LitStr, Path, ReturnType, Signature, Stmt, Token, Type,
    TypeInfer,
};

/// Turns a handler into a span, a completion span and metrics.
///
/// ```ignore
/// #[instrument::workflow_span(
///     kind = "workflow",                          // required: "workflow", "task", or another lowercase word
///     name = "workflow.complete",                 // optional; default "<kind>.<fn name>"
///     event = "end",                              // optional: "run" (default), "start", "end", "step"
///     tenant = req.tenant_id,                     // required: &str, String, TenantId (or Option of them)
///     id = req.workflow_id,                       // optional: recorded as "<kind>.id"
///     traceparent = row.traceparent.as_deref(),   // optional: the span's parent is restored from it
///     started_at = row.created_at,                // optional: SystemTime; gives total_duration_ms
///     fields(task_queue = req.queue, worker.id = self.worker_id), // optional extra attributes
///     labels(task_type = req.task_type),           // optional metric labels
///     crate = instrument_core,                    // optional: path of the crate with `work`
/// )]
/// async fn complete(&self, req: CompleteRequest, row: WorkflowRow) -> Result<Reply, Status> { ... }
/// ```
///
/// The expressions are evaluated once, by reference, before the body runs. The span
/// (`name`, internal) carries `tenant.id`, `<kind>.id` and the fields (string values
/// redacted), has its parent restored from `traceparent` when given (missing or
/// corrupt: a fresh trace) and is current while the body runs; the tenant is in its
/// OpenTelemetry context. When the call ends, a span `<kind>.completed`,
/// `<kind>.failed` (`Err(e)` with `E: Display`, `None`, or a panic, which then
/// continues) or `<kind>.cancelled` (the future dropped first) records `tenant.id`,
/// the id and the fields, `execution_duration_ms`, `total_duration_ms` (from
/// `started_at`, where it then starts) and the redacted error, cut to 1 KiB. It is the
/// function span's child; with a `started_at` (it then began before the call) it is
/// the function span's sibling under their parent, or its child when the function
/// span is a root; what the
/// caller knows of the work's life goes in the fields (attributes such as
/// `fields(execution_count = row.polls, pending_duration_ms = row.pending_ms)`). Metrics, named after the
/// process-wide `MetricNames` (`instrument` by default, set by the pipeline): the
/// lifecycle counters `<prefix>_<kind>s_{started,completed,failed,cancelled}_total`,
/// the lifetime histogram `<prefix>_<kind>_duration_seconds` (seconds to days) and
/// every call's run time in `<prefix>_<kind>_handler_seconds` (request-scale
/// buckets), labels `tenant_id`, `name` (and `status` on the histograms), and the
/// labels given in `labels(...)` (`workflow_kind = row.kind`: keys `[a-z][a-z0-9_]*`,
/// values any `Display`, capped by the label guard like every label). Label values are
/// made on every call, sampled or not: give only what has few values (a kind, a
/// queue), never an id.
///
/// `event` says what a call is in the life of its piece of work, so that each
/// lifecycle event is counted once whichever handlers see the work
/// (`instrument_core::work::Event`): `"run"` (the default) — the call is the whole
/// piece of work: counted started when it begins and ended as it ends, with a
/// completion span; `"start"` — counted started when the call succeeds, no
/// completion span; `"end"` — the call's outcome is how the work ended (`Ok`
/// completed, `Err` failed), counted and spanned as such, its lifetime from
/// `started_at`; `"step"` (a poll, a heartbeat) — no lifecycle event, no completion
/// span. Arguments are recorded only when named in `fields(...)`. Each
/// function keeps its metric handles per tenant under a lasting recorder (the one
/// `install_prometheus` installs; see `instrument_core::cardinality::keep_handles_for`),
/// and registers them on every call under any other.
///
/// Works on `async fn` and `fn`, free functions and methods, generic functions, inside
/// `#[async_trait]` impls, with any return type. With the facade's `disabled`
/// feature, the function is left as it is.
#[proc_macro_attribute]
pub fn workflow_span(attr: TokenStream, item: TokenStream) -> TokenStream {
    match expand(attr.into(), item.into()) {
        Ok(tokens) => tokens.into(),
        Err(e) => e.to_compile_error().into(),
    }
}

/// One `fields(...)` entry.
struct Field {
    key: String,
    key_span: Span,
    value: Expr,
}

#[derive(Default)]
struct Args {
    kind: Option<LitStr>,
    name: Option<LitStr>,
    event: Option<LitStr>,
    tenant: Option<Expr>,
    id: Option<Expr>,
    traceparent: Option<Expr>,
    started_at: Option<Expr>,
    fields: Option<Vec<Field>>,
    labels: Option<Vec<Field>>,
    krate: Option<Path>,
}

const ARGS: &str =
    "kind, name, event, tenant, id, traceparent, started_at, fields(...), labels(...), crate";

/// Label keys the toolkit sets itself on a site's metrics.
const RESERVED_LABELS: [&str; 3] = ["tenant_id", "name", "status"];

/// `event = "..."`: the names and the `work::Event` variant each stands for.
const EVENTS: [(&str, &str); 4] = [
    ("run", "Run"),
    ("start", "Start"),
    ("end", "End"),
    ("step", "Step"),
];

fn set<T>(slot: &mut Option<T>, value: T, name: &str, span: Span) -> syn::Result<()> {
    if slot.is_some() {
        return Err(syn::Error::new(
            span,
            format!("`{name}` is given more than once"),
        ));
    }
    *slot = Some(value);
    Ok(())
}

/// A field key: `a.b.c` (keywords allowed, `task.type`) or a string literal.
fn parse_key(input: ParseStream<'_>) -> syn::Result<(String, Span)> {
    if input.peek(LitStr) {
        let lit: LitStr = input.parse()?;
        return Ok((lit.value(), lit.span()));
    }
    let first = Ident::parse_any(input)?;
    let span = first.span();
    let mut key = first.unraw().to_string();
    while input.peek(Token![.]) {
        input.parse::<Token![.]>()?;
        key.push('.');
        key.push_str(&Ident::parse_any(input)?.unraw().to_string());
    }
    Ok((key, span))
}

impl Parse for Args {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        let mut args = Args::default();
        while !input.is_empty() {
            if input.peek(Token![crate]) {
                let token: Token![crate] = input.parse()?;
                input.parse::<Token![=]>()?;
                let path = input.call(Path::parse_mod_style)?;
                set(&mut args.krate, path, "crate", token.span)?;
            } else {
                let ident = Ident::parse_any(input)?;
                let span = ident.span();
                match ident.to_string().as_str() {
                    "fields" => {
                        let content;
                        syn::parenthesized!(content in input);
                        let mut fields: Vec<Field> = Vec::new();
                        let entries =
                            Punctuated::<(String, Span, Expr), Token![,]>::parse_terminated_with(
                                &content,
                                |input| {
                                    let (key, span) = parse_key(input)?;
                                    input.parse::<Token![=]>()?;
                                    Ok((key, span, input.parse()?))
                                },
                            )?;
                        for (key, key_span, value) in entries {
                            if fields.iter().any(|f| f.key == key) {
                                return Err(syn::Error::new(
                                    key_span,
                                    format!("field `{key}` is given more than once"),
                                ));
                            }
                            fields.push(Field {
                                key,
                                key_span,
                                value,
                            });
                        }
                        set(&mut args.fields, fields, "fields", span)?;
                    }
                    "labels" => {
                        let content;
                        syn::parenthesized!(content in input);
                        let mut labels: Vec<Field> = Vec::new();
                        let entries =
                            Punctuated::<(Ident, Expr), Token![,]>::parse_terminated_with(
                                &content,
                                |input| {
                                    let key = Ident::parse_any(input)?;
                                    input.parse::<Token![=]>()?;
                                    Ok((key, input.parse()?))
                                },
                            )?;
                        for (key, value) in entries {
                            let (name, key_span) = (key.unraw().to_string(), key.span());
                            if !is_word(&name) {
                                return Err(syn::Error::new(
                                    key_span,
                                    format!("label `{name}` must be a metric label name: [a-z][a-z0-9_]*, at most 64 characters"),
                                ));
                            }
                            if RESERVED_LABELS.contains(&name.as_str()) {
                                return Err(syn::Error::new(
                                    key_span,
                                    format!("label `{name}` is set by #[workflow_span] itself"),
                                ));
                            }
                            if labels.iter().any(|l| l.key == name) {
                                return Err(syn::Error::new(
                                    key_span,
                                    format!("label `{name}` is given more than once"),
                                ));
                            }
                            labels.push(Field {
                                key: name,
                                key_span,
                                value,
                            });
                        }
                        set(&mut args.labels, labels, "labels", span)?;
                    }
                    name @ ("kind" | "name" | "event") => {
                        input.parse::<Token![=]>()?;
                        let lit: LitStr = input.parse().map_err(|e| {
                            syn::Error::new(e.span(), format!("`{name}` takes a string literal"))
                        })?;
                        let slot = match name {
                            "kind" => &mut args.kind,
                            "name" => &mut args.name,
                            _ => &mut args.event,
                        };
                        set(slot, lit, name, span)?;
                    }
                    name @ ("tenant" | "id" | "traceparent" | "started_at") => {
                        input.parse::<Token![=]>()?;
                        let expr: Expr = input.parse()?;
                        let slot = match name {
                            "tenant" => &mut args.tenant,
                            "id" => &mut args.id,
                            "traceparent" => &mut args.traceparent,
                            _ => &mut args.started_at,
                        };
                        set(slot, expr, name, span)?;
                    }
                    other => {
                        return Err(syn::Error::new(
                            span,
                            format!("unknown argument `{other}`; expected one of {ARGS}"),
                        ))
                    }
                }
            }
            if input.is_empty() {
                break;
            }
            input.parse::<Token![,]>()?;
        }
        Ok(args)
    }
}

/// `[a-z][a-z0-9_]*`, at most 64 characters: a metric-name word.
fn is_word(s: &str) -> bool {
    (1..=64).contains(&s.len())
        && s.as_bytes()[0].is_ascii_lowercase()
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

/// The function the attribute is on: signature, body, and the rest kept verbatim.
struct Function {
    attrs: Vec<syn::Attribute>,
    vis: syn::Visibility,
    sig: Signature,
    block: Box<Block>,
}

fn parse_function(item: TokenStream2) -> syn::Result<Function> {
    match syn::parse2::<syn::Item>(item.clone()) {
        Ok(syn::Item::Fn(f)) => Ok(Function {
            attrs: f.attrs,
            vis: f.vis,
            sig: f.sig,
            block: f.block,
        }),
        Ok(other) => Err(syn::Error::new(
            first_token_span(&other.to_token_stream()),
            "#[workflow_span] goes on a function",
        )),
        // Methods in traits and impls parse as items too; anything else is not a function.
        Err(_) => Err(syn::Error::new(
            first_token_span(&item),
            "#[workflow_span] goes on a function with a body",
        )),
    }
}

fn first_token_span(tokens: &TokenStream2) -> Span {
    tokens
        .clone()
        .into_iter()
        .next()
        .map_or_else(Span::call_site, |t| t.span())
}

/// A required argument, or an error pointing at the attribute.
fn required<T>(arg: Option<T>, message: &str) -> syn::Result<T> {
    arg.ok_or_else(|| syn::Error::new(Span::call_site(), message))
}

fn expand(attr: TokenStream2, item: TokenStream2) -> syn::Result<TokenStream2> {
    let args: Args = syn::parse2(attr)?;
    let function = parse_function(item)?;
    if let Some(constness) = &function.sig.constness {
        return Err(syn::Error::new(
            constness.span,
            "#[workflow_span] cannot go on a `const fn`: it records spans and metrics at run time",
        ));
    }
    let kind = required(
        args.kind.as_ref(),
        "missing `kind = \"...\"` (\"workflow\", \"task\", or another lowercase word)",
    )?;
    let kind_value = kind.value();
    if !is_word(&kind_value) {
        return Err(syn::Error::new(
            kind.span(),
            "`kind` must be a lowercase word: [a-z][a-z0-9_]*, at most 64 characters",
        ));
    }
    let tenant = required(
        args.tenant.as_ref(),
        "missing `tenant = ...` (an expression giving &str, String or TenantId)",
    )?;
    if let Some(name) = &args.name {
        if name.value().trim().is_empty() {
            return Err(syn::Error::new(name.span(), "`name` must not be empty"));
        }
    }
    let event = match &args.event {
        None => None,
        Some(lit) => match EVENTS.iter().find(|(name, _)| *name == lit.value()) {
            Some((_, variant)) => Some(Ident::new(variant, lit.span())),
            None => {
                let names: Vec<String> = EVENTS.iter().map(|(n, _)| format!("\"{n}\"")).collect();
                return Err(syn::Error::new(
                    lit.span(),
                    format!("unknown `event`; expected one of {}", names.join(", ")),
                ));
            }
        },
    };
    if cfg!(feature = "disabled") {
        let Function {
            attrs,
            vis,
            sig,
            block,
        } = function;
        // Arguments named only in the attribute are unused without it.
        return Ok(quote! { #(#attrs)* #[allow(unused_variables)] #vis #sig #block });
    }
    Ok(instrument(&args, &kind_value, event, tenant, function))
}

/// The return type, for a hint that pins the body's type (`?` needs it, and so does
/// the outcome's classification, which must know a `Result`'s error type), with each
/// `impl Trait` in it, which cannot be named, as `_`: `Result<impl Display, E>` is
/// hinted as `Result<_, E>`.
fn return_hint(output: &ReturnType) -> Option<TokenStream2> {
    match output {
        ReturnType::Default => None,
        ReturnType::Type(_, ty) => {
            let mut ty = (**ty).clone();
            ImplAsInferred.visit_type_mut(&mut ty);
            Some(ty.to_token_stream())
        }
    }
}

/// Replaces each `impl Trait` of a type with `_`.
struct ImplAsInferred;

impl VisitMut for ImplAsInferred {
    fn visit_type_mut(&mut self, ty: &mut Type) {
        if let Type::ImplTrait(opaque) = ty {
            *ty = Type::Infer(TypeInfer {
                underscore_token: Token![_](opaque.impl_token.span),
            });
            return;
        }
        visit_mut::visit_type_mut(self, ty);
    }
}

/// `Box::pin(async move { ... })` as the last expression: the shape `#[async_trait]`
/// gives an `async fn` before this attribute runs.
fn async_trait_body(block: &Block) -> Option<(usize, &syn::ExprCall)> {
    let last = block.stmts.len().checked_sub(1)?;
    let Stmt::Expr(Expr::Call(call), None) = &block.stmts[last] else {
        return None;
    };
    let Expr::Path(func) = &*call.func else {
        return None;
    };
    let is_pin = func.path.segments.last().is_some_and(|s| s.ident == "pin");
    let is_async = matches!(call.args.first(), Some(Expr::Async(_)));
    (is_pin && is_async && call.args.len() == 1).then_some((last, call))
}

fn instrument(
    args: &Args,
    kind: &str,
    event: Option<Ident>,
    tenant: &Expr,
    function: Function,
) -> TokenStream2 {
    let Function {
        attrs,
        vis,
        sig,
        block,
    } = function;
    let krate: Path = args
        .krate
        .clone()
        .unwrap_or_else(|| parse_quote!(::instrument));
    let p = quote!(#krate::work);
    let fn_name = sig.ident.unraw().to_string();
    let name = args
        .name
        .as_ref()
        .map_or_else(|| format!("{kind}.{fn_name}"), LitStr::value);
    let id_key = format!("{kind}.id");
    let site_ident = format_ident!("__INSTRUMENT_SITE");
    let site = match event {
        None => quote! {
            static #site_ident: #p::Site = #p::Site::new(#kind, #name);
        },
        Some(event) => quote! {
            static #site_ident: #p::Site = #p::Site::with_event(#kind, #name, #p::Event::#event);
        },
    };
    let tenant_arg = quote_spanned!(tenant.span()=> #p::tenant(&(#tenant)));
    let id_arg = match &args.id {
        Some(id) => quote_spanned!(id.span()=> #p::field(#id_key, &(#id))),
        None => quote!(::core::option::Option::None),
    };
    let parent_arg = match &args.traceparent {
        Some(tp) => quote_spanned!(tp.span()=> #p::traceparent(&(#tp))),
        None => quote!(#p::Parent::Current),
    };
    let started_arg = match &args.started_at {
        Some(at) => quote_spanned!(at.span()=> #p::started_at(&(#at))),
        None => quote!(::core::option::Option::None),
    };
    let fields = args.fields.iter().flatten().map(|f| {
        let key = &f.key;
        let value = &f.value;
        quote_spanned!(f.key_span=> #p::field(#key, &(#value)))
    });
    let start = match &args.labels {
        None => quote! {
            let __instrument_call = #p::Call::start(
                &#site_ident,
                #tenant_arg,
                #parent_arg,
                #started_arg,
                || (#id_arg, [#(#fields),*]),
            );
        },
        Some(labels) => {
            let labels = labels.iter().map(|l| {
                let key = &l.key;
                let value = &l.value;
                quote_spanned!(l.key_span=> (#key, #p::label(&(#value))))
            });
            quote! {
                let __instrument_call = #p::Call::start_labelled(
                    &#site_ident,
                    #tenant_arg,
                    #parent_arg,
                    #started_arg,
                    [#(#labels),*],
                    || (#id_arg, [#(#fields),*]),
                );
            }
        }
    };
    let classify = quote! {
        |__instrument_ret| {
            #[allow(unused_imports)]
            use #p::{OptionOutcome as _, PlainOutcome as _, ResultOutcome as _, TypedOutcome as _};
            (&&#p::Classify(__instrument_ret)).__instrument_outcome()
        }
    };
    let hint = return_hint(&sig.output);

    if sig.asyncness.is_some() {
        let hint = hint.map(|ty| {
            quote! {
                #[allow(unreachable_code, clippy::diverging_sub_expression, clippy::let_unit_value, clippy::needless_return)]
                if false {
                    let __instrument_fake_return: #ty = loop {};
                    return __instrument_fake_return;
                }
            }
        });
        let stmts = &block.stmts;
        return quote! {
            #(#attrs)* #vis #sig {
                #site
                #start
                #p::Call::run_async(__instrument_call, async move { #hint #(#stmts)* }, #classify).await
            }
        };
    }

    if let Some((last, call)) = async_trait_body(&block) {
        let before = &block.stmts[..last];
        let pin = &call.func;
        let future = &call.args[0];
        return quote! {
            #(#attrs)* #vis #sig {
                #(#before)*
                #site
                #start
                #pin(#p::Call::run_async(__instrument_call, #future, #classify))
            }
        };
    }

    let annotation = hint.map(|ty| quote!(-> #ty));
    let stmts = &block.stmts;
    quote! {
        #(#attrs)* #vis #sig {
            #site
            #start
            #p::Call::run_sync(__instrument_call, move || #annotation { #(#stmts)* }, #classify)
        }
    }
}
