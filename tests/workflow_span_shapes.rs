//! `#[workflow_span]` on the less common function shapes: lifetimes, `mut` and
//! destructured parameters, `self: Arc<Self>` / `Pin<&mut Self>`, `unsafe`,
//! `extern "C"`, const generics, boxed and aliased errors, functions returning a
//! future, recursion through `Box::pin`, trait impls, other attributes before or after
//! (`#[tracing::instrument]` included), `impl Trait` inside a return type, native
//! `async fn` in traits, `macro_rules!`. Each compiles and returns what it would
//! without the attribute.
#![allow(dead_code, clippy::all)]
use instrument::workflow_span;
use std::fmt;
use std::pin::Pin;
use std::sync::Arc;

#[derive(Debug)]
pub struct E;
impl fmt::Display for E {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("e")
    }
}
impl std::error::Error for E {}

pub struct Row {
    id: u64,
    tenant: String,
}

#[workflow_span(kind = "task", tenant = "acme")]
fn first<'a>(xs: &'a [u8]) -> Option<&'a u8> {
    xs.first()
}

#[workflow_span(kind = "task", tenant = tenant)]
fn muts(mut x: u32, tenant: &str) -> u32 {
    x += 1;
    x
}

#[workflow_span(kind = "task", tenant = "acme")]
fn destructure((a, b): (u8, u8), Row { id, .. }: Row) -> u64 {
    id + a as u64 + b as u64
}

#[workflow_span(kind = "task", tenant = "acme")]
async fn boxed_err(fail: bool) -> Result<u8, Box<dyn std::error::Error + Send + Sync>> {
    if fail {
        return Err(Box::new(E));
    }
    Ok(1)
}

#[workflow_span(kind = "task", tenant = "acme")]
fn anyhowish() -> Result<(), Box<dyn std::error::Error>> {
    Err("x".into())
}

pub struct S<T> {
    t: T,
}
impl<T: Clone + Send + Sync + 'static> S<T> {
    #[workflow_span(kind = "task", tenant = "acme")]
    fn get(&self) -> T {
        self.t.clone()
    }
    #[workflow_span(kind = "task", tenant = "acme")]
    async fn get_async(self: Arc<Self>) -> T {
        self.t.clone()
    }
    #[workflow_span(kind = "task", tenant = "acme")]
    fn pinned(self: Pin<&mut Self>) -> u8 {
        1
    }
    #[workflow_span(kind = "task", tenant = "acme")]
    fn make(t: T) -> Self {
        Self { t }
    }
}

/// Doc comment, other attributes.
#[must_use]
#[inline]
#[workflow_span(kind = "task", tenant = "acme")]
pub fn attrs() -> u8 {
    1
}

#[workflow_span(kind = "task", tenant = "acme")]
#[inline(never)]
pub fn attrs_after() -> u8 {
    1
}

#[workflow_span(kind = "task", tenant = "acme")]
unsafe fn not_safe() -> u8 {
    1
}

#[workflow_span(kind = "task", tenant = "acme")]
pub(crate) async unsafe fn async_unsafe() -> u8 {
    1
}

#[workflow_span(kind = "task", tenant = row.tenant.as_str(), id = &row.id)]
fn by_ref(row: &Row) -> u64 {
    row.id
}

#[workflow_span(kind = "task", tenant = "acme")]
fn returns_future() -> impl std::future::Future<Output = u8> {
    async { 1 }
}

#[workflow_span(kind = "task", tenant = "acme")]
fn recursive(n: u32) -> Pin<Box<dyn std::future::Future<Output = u32> + Send>> {
    Box::pin(async move {
        if n == 0 {
            0
        } else {
            recursive(n - 1).await + 1
        }
    })
}

#[workflow_span(kind = "task", tenant = "acme")]
async fn with_closure(v: Vec<u8>) -> usize {
    let f = |x: &u8| -> bool {
        if *x > 1 {
            return true;
        }
        false
    };
    v.iter().filter(|x| f(x)).count()
}

#[workflow_span(kind = "task", tenant = "acme")]
async fn generic_where<T>(t: T) -> Result<String, E>
where
    T: fmt::Debug + Send,
{
    let s = format!("{t:?}");
    if s.is_empty() {
        Err(E)?
    }
    Ok(s)
}

#[workflow_span(kind = "task", tenant = "acme")]
fn never_returns_normally() -> Result<u8, E> {
    loop {
        return Ok(1);
    }
}

#[workflow_span(kind = "task", tenant = "acme")]
async fn nested_async() -> u8 {
    async { 1 }.await + (async move { 2 }).await
}

#[workflow_span(kind = "task", tenant = "acme")]
fn impl_arg(f: impl Fn() -> u8) -> u8 {
    f()
}

#[workflow_span(kind = "task", tenant = "acme")]
fn dyn_arg(f: &dyn Fn() -> u8) -> u8 {
    f()
}

#[workflow_span(kind = "task", tenant = "acme")]
fn const_generic<const N: usize>(a: [u8; N]) -> usize {
    a.len()
}

#[workflow_span(kind = "task", tenant = "acme")]
async fn lifetimes<'a, 'b: 'a>(a: &'a str, b: &'b str) -> &'a str {
    if a.is_empty() {
        b
    } else {
        a
    }
}

trait Handler {
    fn handle(&self, x: u8) -> Result<u8, E>;
}
struct H;
impl Handler for H {
    #[workflow_span(kind = "task", tenant = "acme")]
    fn handle(&self, x: u8) -> Result<u8, E> {
        Ok(x)
    }
}

#[test]
fn shapes_run() {
    assert_eq!(first(&[1, 2]), Some(&1));
    assert_eq!(muts(1, "acme"), 2);
    assert_eq!(
        destructure(
            (1, 2),
            Row {
                id: 3,
                tenant: "a".into()
            }
        ),
        6
    );
    assert!(anyhowish().is_err());
    assert_eq!(S::make(3u8).get(), 3);
    assert_eq!(attrs(), 1);
    assert_eq!(unsafe { not_safe() }, 1);
    assert_eq!(
        by_ref(&Row {
            id: 4,
            tenant: "acme".into()
        }),
        4
    );
    assert_eq!(never_returns_normally().unwrap(), 1);
    assert_eq!(impl_arg(|| 2), 2);
    assert_eq!(dyn_arg(&|| 2), 2);
    assert_eq!(const_generic([1, 2, 3]), 3);
    assert_eq!(H.handle(5).unwrap(), 5);
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    rt.block_on(async {
        assert!(boxed_err(true).await.is_err());
        assert_eq!(std::sync::Arc::new(S { t: 1u8 }).get_async().await, 1);
        assert_eq!(unsafe { async_unsafe() }.await, 1);
        assert_eq!(returns_future().await, 1);
        assert_eq!(recursive(3).await, 3);
        assert_eq!(with_closure(vec![1, 2, 3]).await, 2);
        assert_eq!(generic_where(5).await.unwrap(), "5");
        assert_eq!(nested_async().await, 3);
        assert_eq!(lifetimes("", "b").await, "b");
    });
}

use instrument::tenant::TenantId;

#[workflow_span(kind = "task", tenant = tenant)]
#[tracing::instrument(skip_all)]
async fn stacked(tenant: TenantId) -> u8 {
    1
}

#[tracing::instrument(skip_all)]
#[workflow_span(kind = "task", tenant = &tenant)]
async fn stacked_under(tenant: TenantId) -> u8 {
    1
}

#[workflow_span(kind = "task", tenant = tenant.clone(), id = format!("wf-{}", n))]
fn owned_expr(tenant: TenantId, n: u32) -> u32 {
    n
}

#[workflow_span(kind = "task", tenant = t)]
fn opt_tenant(t: Option<&str>) -> u8 {
    1
}

#[workflow_span(kind = "task", tenant = "acme")]
extern "C" fn c_abi() -> u8 {
    1
}

#[workflow_span(kind = "task", tenant = "acme", fields(n = n, s = s))]
fn fields_by_value(n: u64, s: &str) -> u64 {
    n
}

#[workflow_span(kind = "task", tenant = "acme")]
fn result_unit_err() -> Result<(), ()> {
    Err(())
}

#[workflow_span(kind = "task", tenant = "acme")]
async fn result_alias() -> std::io::Result<u8> {
    Ok(1)
}

type R<T> = Result<T, String>;
#[workflow_span(kind = "task", tenant = "acme")]
fn result_type_alias() -> R<u8> {
    Err("no".into())
}

#[test]
fn more_shapes_run() {
    let t = TenantId::parse("acme").unwrap();
    assert_eq!(owned_expr(t.clone(), 3), 3);
    assert_eq!(opt_tenant(None), 1);
    assert_eq!(c_abi(), 1);
    assert_eq!(fields_by_value(2, "x"), 2);
    assert!(result_unit_err().is_err());
    assert!(result_type_alias().is_err());
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    rt.block_on(async {
        assert_eq!(stacked(t.clone()).await, 1);
        assert_eq!(stacked_under(t.clone()).await, 1);
        assert_eq!(result_alias().await.unwrap(), 1);
    });
}

// `impl Trait` inside the return type: the rest of it (a `Result`'s error type) is
// still known where the outcome is classified.
#[workflow_span(kind = "task", tenant = "acme")]
fn result_of_opaque(fail: bool) -> Result<impl fmt::Display, E> {
    if fail {
        Err(E)
    } else {
        Ok(9u64)
    }
}

#[workflow_span(kind = "task", tenant = "acme")]
async fn async_result_of_opaque(fail: bool) -> Result<impl fmt::Display, E> {
    let n: Result<u8, E> = if fail { Err(E) } else { Ok(4) };
    Ok(n? + 1)
}

#[workflow_span(kind = "task", tenant = "acme")]
fn option_of_opaque() -> Option<impl Iterator<Item = u8>> {
    Some([1u8, 2].into_iter())
}

#[workflow_span(kind = "task", tenant = "acme")]
fn boxed_opaque() -> Box<impl Fn() -> u8> {
    Box::new(|| 5)
}

// Native `async fn` in a trait, methods taking `&mut self` and `mut self`, a tenant and
// an id read from `self`, a function a `macro_rules!` makes.
trait Afit {
    async fn run(&self, x: u8) -> Result<u8, E>;
}
struct Worker {
    tenant: String,
    id: u64,
    count: u32,
}
impl Afit for Worker {
    #[workflow_span(kind = "task", tenant = self.tenant.as_str(), id = self.id)]
    async fn run(&self, x: u8) -> Result<u8, E> {
        if x == 0 {
            Err(E)
        } else {
            Ok(x)
        }
    }
}
impl Worker {
    #[workflow_span(kind = "task", tenant = self.tenant.clone())]
    async fn bump(&mut self) -> u32 {
        self.count += 1;
        self.count
    }
    #[workflow_span(kind = "task", tenant = "acme")]
    fn consume(mut self) -> u32 {
        self.count += 2;
        self.count
    }
    #[workflow_span(kind = "task", tenant = "acme")]
    fn same(other: Self) -> Self
    where
        Self: Sized,
    {
        other
    }
}

macro_rules! handler {
    ($name:ident) => {
        #[workflow_span(kind = "task", tenant = "acme")]
        async fn $name(n: u8) -> u8 {
            n
        }
    };
}
handler!(made_by_a_macro);

#[test]
fn opaque_and_method_shapes_run() {
    assert!(result_of_opaque(true).is_err());
    assert_eq!(result_of_opaque(false).unwrap().to_string(), "9");
    assert_eq!(option_of_opaque().unwrap().sum::<u8>(), 3);
    assert_eq!(boxed_opaque()(), 5);
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    rt.block_on(async {
        assert!(async_result_of_opaque(true).await.is_err());
        assert_eq!(
            async_result_of_opaque(false).await.unwrap().to_string(),
            "5"
        );
        let mut w = Worker {
            tenant: "acme".into(),
            id: 9,
            count: 0,
        };
        assert_eq!(w.run(3).await.unwrap(), 3);
        assert!(w.run(0).await.is_err());
        assert_eq!(w.bump().await, 1);
        assert_eq!(Worker::same(w).consume(), 3);
        assert_eq!(made_by_a_macro(4).await, 4);
    });
}
