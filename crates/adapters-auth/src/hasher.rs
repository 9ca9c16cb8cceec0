//! argon2id password hashing: a bounded number of jobs at a time, on
//! tokio's blocking pool, in working memory reused from job to job.

use std::fmt;
use std::num::NonZeroUsize;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use argon2::password_hash::phc;
use argon2::{Algorithm, Argon2, Block, Params, Version};
use domain::{PasswordHash, PlainPassword, PortError};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

const WHAT: &str = "password hasher";

/// The password the dummy hash is made of; never matches anything, since
/// its result is thrown away.
const DUMMY_PASSWORD: &[u8] = b"taskflow dummy password for unknown users";
/// A fixed salt for the dummy hash: it needs no secrecy nor uniqueness, and
/// a fixed one keeps the constructor free of RNG failures.
const DUMMY_SALT: &[u8] = b"taskflow-dummy-salt";
/// Bytes of random salt in every new hash.
const SALT_LEN: usize = 16;

/// How much hashing may happen at once, and what happens to the excess.
///
/// argon2id is deliberately expensive in CPU and memory (19 MiB a job with
/// the OWASP parameters). Unbounded, a flood of logins (no account needed:
/// unknown users are hashed against a dummy) would start a thread and a
/// working memory per request. Bounded, at most `concurrency` jobs run and
/// hold working memory; later ones wait in line, at most `max_queue` of
/// them for at most `queue_timeout` each, and are then refused with
/// [`PortError::Overloaded`] (HTTP 503 with `Retry-After`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HashLimits {
    /// Jobs running at once; each holds one working memory.
    pub concurrency: NonZeroUsize,
    /// How long a job may wait for its turn.
    pub queue_timeout: Duration,
    /// Jobs that may wait at once; more are refused at once.
    pub max_queue: usize,
}

impl HashLimits {
    /// How long a job waits for its turn by default.
    pub const DEFAULT_QUEUE_TIMEOUT: Duration = Duration::from_secs(5);
    /// Waiting jobs allowed per running one by default.
    pub const QUEUE_PER_JOB: usize = 64;

    /// `concurrency` jobs at once, the default queue.
    pub fn new(concurrency: NonZeroUsize) -> Self {
        Self {
            concurrency,
            queue_timeout: Self::DEFAULT_QUEUE_TIMEOUT,
            max_queue: concurrency.get().saturating_mul(Self::QUEUE_PER_JOB),
        }
    }

    /// One job per core this process may use.
    pub fn per_core() -> Self {
        Self::new(std::thread::available_parallelism().unwrap_or(NonZeroUsize::MIN))
    }

    /// The `Retry-After` a refused job suggests: the queue timeout, in
    /// whole seconds, at least one.
    fn retry_after(&self) -> Duration {
        Duration::from_secs(self.queue_timeout.as_secs_f64().ceil().max(1.0) as u64)
    }
}

impl Default for HashLimits {
    fn default() -> Self {
        Self::per_core()
    }
}

/// [`domain::PasswordHasher`] with argon2id (v0x13), producing PHC strings
/// such as `$argon2id$v=19$m=19456,t=2,p=1$<salt>$<hash>` with a random
/// 16-byte salt.
///
/// Every hash and verification is a job: it waits for one of
/// [`HashLimits::concurrency`] slots (see [`HashLimits`] for the queue),
/// then runs on [`tokio::task::spawn_blocking`], never on the async worker
/// threads, in a working memory taken from a pool: at most one memory per
/// slot is ever allocated, so memory stays bounded however many requests
/// come. A job keeps its slot until the hash is done, even when the
/// request that asked for it has gone. Verification reads the parameters
/// from the stored hash, so hashes made with other parameters keep working.
///
/// Cloning is cheap: the state is shared behind an [`Arc`].
#[derive(Clone)]
pub struct Argon2Hasher {
    inner: Arc<Inner>,
    slots: Arc<Semaphore>,
}

struct Inner {
    argon2: Argon2<'static>,
    /// A hash made with the same parameters, verified against when there
    /// is no user, so unknown-user logins cost as much as wrong passwords.
    dummy: phc::PasswordHash,
    limits: HashLimits,
    /// Jobs waiting for a slot now.
    waiting: AtomicUsize,
    /// Working memories not in use; at most one per slot exists.
    memories: Mutex<Vec<Vec<Block>>>,
    /// Working memories allocated so far.
    allocated: AtomicUsize,
}

impl Argon2Hasher {
    /// OWASP's recommended argon2id memory cost, in KiB (19 MiB).
    pub const OWASP_M_KIB: u32 = 19_456;
    /// OWASP's recommended argon2id number of passes.
    pub const OWASP_T: u32 = 2;
    /// OWASP's recommended argon2id parallelism.
    pub const OWASP_P: u32 = 1;

    /// The production hasher: argon2id with the OWASP parameters
    /// (m=19456 KiB, t=2, p=1), one job per core.
    ///
    /// Computes the dummy hash, so it blocks for one hash (tens of
    /// milliseconds): call it once at start-up.
    pub fn new() -> Self {
        Self::with_params(Self::OWASP_M_KIB, Self::OWASP_T, Self::OWASP_P).expect(
            "the OWASP argon2id parameters are valid and hashing with a fixed salt cannot fail",
        )
    }

    /// A hasher with custom argon2id parameters: memory cost `m_kib` in KiB,
    /// `t` passes, `p` lanes. Meant for tests that want cheap hashing
    /// (e.g. `with_params(8, 1, 1)`); production uses [`Argon2Hasher::new`].
    ///
    /// Fails with [`PortError::Unexpected`] when argon2 rejects the
    /// parameters (e.g. `m_kib < 8 * p`, `t == 0`, `p == 0`).
    pub fn with_params(m_kib: u32, t: u32, p: u32) -> Result<Self, PortError> {
        Self::with_params_and_limits(m_kib, t, p, HashLimits::per_core())
    }

    /// The OWASP parameters with other limits.
    pub fn with_limits(limits: HashLimits) -> Result<Self, PortError> {
        Self::with_params_and_limits(Self::OWASP_M_KIB, Self::OWASP_T, Self::OWASP_P, limits)
    }

    /// Custom parameters (see [`Argon2Hasher::with_params`]) and limits.
    pub fn with_params_and_limits(
        m_kib: u32,
        t: u32,
        p: u32,
        limits: HashLimits,
    ) -> Result<Self, PortError> {
        let params = Params::new(m_kib, t, p, None).map_err(failed)?;
        let argon2 = Argon2::new(Algorithm::Argon2id, Version::V0x13, params);
        // The dummy's working memory becomes the pool's first.
        let mut memory = Vec::new();
        let dummy = hash_with_salt(&argon2, DUMMY_PASSWORD, DUMMY_SALT, &mut memory)?;
        let inner = Inner {
            argon2,
            dummy,
            limits,
            waiting: AtomicUsize::new(0),
            memories: Mutex::new(vec![memory]),
            allocated: AtomicUsize::new(1),
        };
        Ok(Self {
            inner: Arc::new(inner),
            slots: Arc::new(Semaphore::new(limits.concurrency.get())),
        })
    }

    /// The limits this hasher enforces.
    pub fn limits(&self) -> HashLimits {
        self.inner.limits
    }

    /// How many working memories have been allocated since construction:
    /// never more than [`HashLimits::concurrency`], since they are reused.
    pub fn allocated_memories(&self) -> usize {
        self.inner.allocated.load(Ordering::Relaxed)
    }

    /// Waits for a slot: at once when one is free, else in line (bounded
    /// in length and in time).
    async fn slot(&self) -> Result<OwnedSemaphorePermit, PortError> {
        if let Ok(permit) = Arc::clone(&self.slots).try_acquire_owned() {
            return Ok(permit);
        }
        let limits = self.inner.limits;
        let overloaded = || PortError::overloaded(WHAT, limits.retry_after());
        let _in_line =
            InLine::join(&self.inner.waiting, limits.max_queue).ok_or_else(overloaded)?;
        match tokio::time::timeout(
            limits.queue_timeout,
            Arc::clone(&self.slots).acquire_owned(),
        )
        .await
        {
            Ok(Ok(permit)) => Ok(permit),
            Ok(Err(closed)) => Err(PortError::unexpected(WHAT, closed)),
            Err(_elapsed) => Err(overloaded()),
        }
    }

    /// Runs `work` as a job: in a slot, on the blocking pool, with a
    /// working memory. A panic or cancellation of the blocking task
    /// becomes [`PortError::Unexpected`].
    async fn job<T, F>(&self, work: F) -> Result<T, PortError>
    where
        T: Send + 'static,
        F: FnOnce(&Inner, &mut Vec<Block>) -> Result<T, PortError> + Send + 'static,
    {
        let permit = self.slot().await?;
        let inner = Arc::clone(&self.inner);
        tokio::task::spawn_blocking(move || {
            // Held until the work is done, even if the caller is gone: the
            // slot bounds the work running, not the callers waiting.
            let _permit = permit;
            let mut memory = Lease::take(&inner);
            work(&inner, &mut memory.blocks)
        })
        .await
        .map_err(failed)?
    }
}

/// A place in the queue for a slot, given up when dropped.
struct InLine<'a>(&'a AtomicUsize);

impl<'a> InLine<'a> {
    /// `None` when `max` are waiting already.
    fn join(waiting: &'a AtomicUsize, max: usize) -> Option<Self> {
        waiting
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < max).then_some(n + 1)
            })
            .ok()
            .map(|_| Self(waiting))
    }
}

impl Drop for InLine<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Default for Argon2Hasher {
    /// Same as [`Argon2Hasher::new`].
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for Argon2Hasher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let params = self.inner.argon2.params();
        f.debug_struct("Argon2Hasher")
            .field("algorithm", &"argon2id")
            .field("m_kib", &params.m_cost())
            .field("t", &params.t_cost())
            .field("p", &params.p_cost())
            .field("limits", &self.inner.limits)
            .finish_non_exhaustive()
    }
}

impl Inner {
    /// A working memory from the pool, or a new one (the caller holds a
    /// slot, so at most one per slot is ever made).
    fn take_memory(&self) -> Vec<Block> {
        let pooled = self
            .memories
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop();
        pooled.unwrap_or_else(|| {
            self.allocated.fetch_add(1, Ordering::Relaxed);
            Vec::new()
        })
    }

    /// Back to the pool, at the size our own parameters need: a memory
    /// grown for an old hash with a larger memory cost is not kept grown.
    fn put_memory(&self, mut memory: Vec<Block>) {
        let blocks = self.argon2.params().block_count();
        if memory.len() > blocks {
            memory.truncate(blocks);
            memory.shrink_to_fit();
        }
        let mut pool = self.memories.lock().unwrap_or_else(PoisonError::into_inner);
        if pool.len() < self.limits.concurrency.get() {
            pool.push(memory);
        }
    }

    fn hash(&self, password: &[u8], memory: &mut Vec<Block>) -> Result<PasswordHash, PortError> {
        let mut salt = [0u8; SALT_LEN];
        getrandom::fill(&mut salt).map_err(failed)?;
        let hash = hash_with_salt(&self.argon2, password, &salt, memory)?;
        Ok(PasswordHash::new(hash.to_string()))
    }

    fn verify(
        &self,
        password: &[u8],
        stored: Option<&PasswordHash>,
        memory: &mut Vec<Block>,
    ) -> Result<bool, PortError> {
        let Some(stored) = stored else {
            // Same work as a real check; the answer does not matter.
            let outcome = self.verify_phc(password, &self.dummy, memory);
            std::hint::black_box(outcome).ok();
            return Ok(false);
        };
        let parsed = phc::PasswordHash::new(stored.as_str()).map_err(failed)?;
        self.verify_phc(password, &parsed, memory)
    }

    /// What `argon2`'s own `verify_password` does, in `memory`: the
    /// algorithm, version and parameters come from the stored hash.
    fn verify_phc(
        &self,
        password: &[u8],
        stored: &phc::PasswordHash,
        memory: &mut Vec<Block>,
    ) -> Result<bool, PortError> {
        let (Some(salt), Some(expected)) = (&stored.salt, &stored.hash) else {
            return Err(PortError::unexpected(
                WHAT,
                "stored hash has no salt or no output",
            ));
        };
        let algorithm = Algorithm::try_from(stored.algorithm.as_str()).map_err(failed)?;
        let version = match stored.version {
            Some(v) => Version::try_from(v).map_err(failed)?,
            None => Version::default(),
        };
        let params = Params::try_from(stored).map_err(failed)?;
        let argon2 = Argon2::new(algorithm, version, params);
        let mut out = vec![0u8; expected.len()];
        run(&argon2, password, salt.as_ref(), &mut out, memory)?;
        // `Output`'s equality is constant-time.
        let computed = phc::Output::new(&out).map_err(failed)?;
        Ok(computed == *expected)
    }
}

/// What `argon2`'s own `hash_password_with_salt` does, in `memory`.
fn hash_with_salt(
    argon2: &Argon2<'_>,
    password: &[u8],
    salt: &[u8],
    memory: &mut Vec<Block>,
) -> Result<phc::PasswordHash, PortError> {
    let params = argon2.params();
    let mut out = vec![0u8; params.output_len().unwrap_or(Params::DEFAULT_OUTPUT_LEN)];
    run(argon2, password, salt, &mut out, memory)?;
    Ok(phc::PasswordHash {
        algorithm: Algorithm::Argon2id.ident(),
        version: Some(Version::V0x13.into()),
        params: params.try_into().map_err(failed)?,
        salt: Some(phc::Salt::new(salt).map_err(failed)?),
        hash: Some(phc::Output::new(&out).map_err(failed)?),
    })
}

/// Any failure of argon2 or of its PHC strings: a bug or a corrupt hash.
fn failed(e: impl Into<domain::BoxError>) -> PortError {
    PortError::unexpected(WHAT, e)
}

/// A working memory on loan from the pool; it goes back when dropped, also
/// when the work panics.
struct Lease<'a> {
    inner: &'a Inner,
    blocks: Vec<Block>,
}

impl<'a> Lease<'a> {
    fn take(inner: &'a Inner) -> Self {
        Self {
            inner,
            blocks: inner.take_memory(),
        }
    }
}

impl Drop for Lease<'_> {
    fn drop(&mut self) {
        self.inner.put_memory(std::mem::take(&mut self.blocks));
    }
}

/// The largest memory cost a stored hash may ask for, in KiB (256 MiB):
/// far above any sensible setting, and refused rather than allocated.
const MAX_M_KIB: u32 = 256 * 1024;

/// One argon2 computation in `memory`, grown first if these parameters
/// need more blocks than it has.
fn run(
    argon2: &Argon2<'_>,
    password: &[u8],
    salt: &[u8],
    out: &mut [u8],
    memory: &mut Vec<Block>,
) -> Result<(), PortError> {
    let params = argon2.params();
    if params.m_cost() > MAX_M_KIB {
        return Err(failed(format!(
            "memory cost {} KiB is over the limit of {MAX_M_KIB} KiB",
            params.m_cost()
        )));
    }
    let blocks = params.block_count();
    if memory.len() < blocks {
        memory
            .try_reserve_exact(blocks - memory.len())
            .map_err(failed)?;
        memory.resize(blocks, Block::new());
    }
    argon2
        .hash_password_into_with_memory(password, salt, out, &mut memory[..blocks])
        .map_err(failed)
}

impl domain::PasswordHasher for Argon2Hasher {
    async fn hash(&self, password: PlainPassword) -> Result<PasswordHash, PortError> {
        self.job(move |inner, memory| inner.hash(password.expose().as_bytes(), memory))
            .await
    }

    async fn verify(
        &self,
        password: PlainPassword,
        hash: Option<PasswordHash>,
    ) -> Result<bool, PortError> {
        self.job(move |inner, memory| {
            inner.verify(password.expose().as_bytes(), hash.as_ref(), memory)
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use domain::PasswordHasher as _;

    use super::*;

    fn cheap() -> Argon2Hasher {
        Argon2Hasher::with_params(8, 1, 1).expect("valid test params")
    }

    fn pw(raw: &str) -> PlainPassword {
        PlainPassword::presented(raw.to_owned())
    }

    #[tokio::test]
    async fn hash_then_verify_is_true() {
        let hasher = cheap();
        let hash = hasher.hash(pw("correct horse")).await.expect("hash");
        assert!(hash.as_str().starts_with("$argon2id$v=19$"));
        assert!(
            hasher
                .verify(pw("correct horse"), Some(hash))
                .await
                .expect("verify")
        );
    }

    #[tokio::test]
    async fn wrong_password_is_false() {
        let hasher = cheap();
        let hash = hasher.hash(pw("correct horse")).await.expect("hash");
        assert!(
            !hasher
                .verify(pw("battery staple"), Some(hash))
                .await
                .expect("verify")
        );
    }

    #[tokio::test]
    async fn no_hash_is_false() {
        let hasher = cheap();
        assert!(!hasher.verify(pw("anything"), None).await.expect("verify"));
        // Not even the dummy password itself.
        let dummy = String::from_utf8(DUMMY_PASSWORD.to_vec()).expect("utf-8");
        assert!(!hasher.verify(pw(&dummy), None).await.expect("verify"));
    }

    #[tokio::test]
    async fn hashes_are_salted() {
        let hasher = cheap();
        let a = hasher.hash(pw("same password")).await.expect("hash");
        let b = hasher.hash(pw("same password")).await.expect("hash");
        assert_ne!(a, b);
        assert!(
            hasher
                .verify(pw("same password"), Some(a))
                .await
                .expect("verify")
        );
        assert!(
            hasher
                .verify(pw("same password"), Some(b))
                .await
                .expect("verify")
        );
    }

    #[tokio::test]
    async fn default_params_are_owasp() {
        let hasher = Argon2Hasher::new();
        let hash = hasher.hash(pw("correct horse")).await.expect("hash");
        assert!(
            hash.as_str().starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
            "{}",
            hash.as_str()
        );
        assert!(
            hasher
                .verify(pw("correct horse"), Some(hash))
                .await
                .expect("verify")
        );
    }

    #[tokio::test]
    async fn verify_uses_the_params_of_the_stored_hash() {
        let stored = cheap().hash(pw("correct horse")).await.expect("hash");
        let other = Argon2Hasher::with_params(16, 2, 1).expect("valid params");
        assert!(
            other
                .verify(pw("correct horse"), Some(stored))
                .await
                .expect("verify")
        );
    }

    #[tokio::test]
    async fn unparsable_stored_hash_is_an_error() {
        let hasher = cheap();
        for bad in [
            "",
            "not a phc string",
            "$argon2id$v=19$m=8,t=1,p=1$c2FsdHNhbHQ$!!",
            // Well-formed PHC, but not an argon2 hash.
            "$scrypt$ln=15,r=8,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA",
        ] {
            let err = hasher
                .verify(pw("whatever"), Some(PasswordHash::new(bad.to_owned())))
                .await
                .expect_err(bad);
            assert!(
                matches!(err, PortError::Unexpected { what: WHAT, .. }),
                "{bad:?}: {err:?}"
            );
        }
    }

    #[tokio::test]
    async fn hashes_interoperate_with_the_argon2_crate() {
        use argon2::{PasswordHasher as _, PasswordVerifier as _};
        let ours = cheap();
        // Made by argon2 itself (as stored before working memory was pooled).
        let theirs = Argon2::new(
            Algorithm::Argon2id,
            Version::V0x13,
            Params::new(8, 1, 1, None).expect("params"),
        );
        let stored = theirs.hash_password(b"correct horse").expect("hash");
        let stored = PasswordHash::new(stored.to_string());
        assert!(
            ours.verify(pw("correct horse"), Some(stored.clone()))
                .await
                .expect("verify")
        );
        assert!(
            !ours
                .verify(pw("wrong horse"), Some(stored))
                .await
                .expect("verify")
        );
        // Made by us, checked by argon2.
        let made = ours.hash(pw("correct horse")).await.expect("hash");
        let parsed = phc::PasswordHash::new(made.as_str()).expect("PHC string");
        assert!(theirs.verify_password(b"correct horse", &parsed).is_ok());
        assert!(theirs.verify_password(b"wrong horse", &parsed).is_err());
    }

    fn limited(concurrency: usize, queue_timeout: Duration, max_queue: usize) -> Argon2Hasher {
        let limits = HashLimits {
            concurrency: NonZeroUsize::new(concurrency).expect("non-zero"),
            queue_timeout,
            max_queue,
        };
        Argon2Hasher::with_params_and_limits(8, 1, 1, limits).expect("valid test params")
    }

    /// Takes every slot, as jobs in progress would.
    async fn occupy(hasher: &Argon2Hasher) -> OwnedSemaphorePermit {
        let n = u32::try_from(hasher.limits().concurrency.get()).expect("small");
        Arc::clone(&hasher.slots)
            .acquire_many_owned(n)
            .await
            .expect("slots")
    }

    #[tokio::test]
    async fn working_memory_is_reused_not_allocated_per_hash() {
        let hasher = limited(2, Duration::from_secs(30), 1_000);
        let stored = hasher.hash(pw("correct horse")).await.expect("hash");
        let jobs: Vec<_> = (0..40)
            .map(|i| {
                let (hasher, stored) = (hasher.clone(), stored.clone());
                tokio::spawn(async move {
                    let hash = (i % 2 == 0).then_some(stored);
                    hasher.verify(pw("guess"), hash).await
                })
            })
            .collect();
        for job in jobs {
            assert!(!job.await.expect("join").expect("verify"));
        }
        let allocated = hasher.allocated_memories();
        assert!((1..=2).contains(&allocated), "{allocated} working memories");
    }

    #[tokio::test]
    async fn memory_grown_for_a_costlier_stored_hash_is_not_kept() {
        let hasher = limited(1, Duration::from_secs(30), 10);
        let costly = Argon2Hasher::with_params(64, 1, 1).expect("valid params");
        let stored = costly.hash(pw("correct horse")).await.expect("hash");
        assert!(
            hasher
                .verify(pw("correct horse"), Some(stored))
                .await
                .expect("verify")
        );
        let pool = hasher.inner.memories.lock().expect("pool");
        let sizes: Vec<usize> = pool.iter().map(Vec::len).collect();
        assert_eq!(sizes, [hasher.inner.argon2.params().block_count()]);
    }

    #[tokio::test]
    async fn a_stored_hash_asking_for_too_much_memory_is_refused() {
        let stored = "$argon2id$v=19$m=4194304,t=1,p=1$c2FsdHNhbHRzYWx0$\
                      aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaGg";
        let err = cheap()
            .verify(pw("x"), Some(PasswordHash::new(stored.to_owned())))
            .await
            .expect_err("4 GiB is refused");
        let line = domain::error::describe(&err);
        assert!(line.contains("over the limit"), "{line}");
    }

    #[tokio::test]
    async fn a_job_waits_for_a_free_slot() {
        let hasher = limited(1, Duration::from_secs(30), 10);
        let busy = occupy(&hasher).await;
        let waiting = tokio::spawn({
            let hasher = hasher.clone();
            async move { hasher.verify(pw("x"), None).await }
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!waiting.is_finished(), "no slot: the job waits");
        drop(busy);
        let outcome = tokio::time::timeout(Duration::from_secs(10), waiting)
            .await
            .expect("runs once a slot is free")
            .expect("join");
        assert!(!outcome.expect("verify"));
    }

    #[tokio::test]
    async fn a_job_that_waits_too_long_is_refused_with_a_retry_hint() {
        let hasher = limited(1, Duration::from_millis(100), 10);
        let _busy = occupy(&hasher).await;
        let err = tokio::time::timeout(Duration::from_secs(10), hasher.verify(pw("x"), None))
            .await
            .expect("the queue timeout ends the wait")
            .expect_err("refused");
        match err {
            PortError::Overloaded { what, retry_after } => {
                assert_eq!(what, WHAT);
                assert_eq!(retry_after, Duration::from_secs(1));
            }
            other => panic!("expected Overloaded, got {other:?}"),
        }
        assert_eq!(
            hasher.inner.waiting.load(Ordering::Acquire),
            0,
            "left the line"
        );
    }

    #[tokio::test]
    async fn a_full_queue_refuses_at_once() {
        // The queue timeout is far beyond the test's patience: only a
        // refusal at the door can end the call in time.
        let hasher = limited(1, Duration::from_secs(3_600), 1);
        let _busy = occupy(&hasher).await;
        let first = tokio::spawn({
            let hasher = hasher.clone();
            async move { hasher.hash(pw("correct horse")).await }
        });
        while hasher.inner.waiting.load(Ordering::Acquire) == 0 {
            tokio::task::yield_now().await;
        }
        let err = tokio::time::timeout(Duration::from_secs(10), hasher.hash(pw("correct horse")))
            .await
            .expect("refused without waiting")
            .expect_err("the line is full");
        assert!(matches!(err, PortError::Overloaded { .. }), "{err:?}");
        first.abort();
    }

    #[test]
    fn retry_after_is_whole_seconds_and_at_least_one() {
        let mut limits = HashLimits::new(NonZeroUsize::MIN);
        for (timeout_ms, expected) in [(0, 1), (100, 1), (1_000, 1), (1_001, 2), (5_000, 5)] {
            limits.queue_timeout = Duration::from_millis(timeout_ms);
            assert_eq!(
                limits.retry_after(),
                Duration::from_secs(expected),
                "{timeout_ms} ms"
            );
        }
    }

    #[test]
    fn invalid_params_are_rejected() {
        assert!(Argon2Hasher::with_params(8, 0, 1).is_err());
        assert!(Argon2Hasher::with_params(8, 1, 0).is_err());
        assert!(Argon2Hasher::with_params(1, 1, 1).is_err());
    }

    #[test]
    fn debug_shows_params() {
        let shown = format!("{:?}", cheap());
        assert!(shown.contains("m_kib: 8"), "{shown}");
    }
}
