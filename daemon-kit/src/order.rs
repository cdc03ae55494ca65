//! Signal streams merged in the order the bus delivered their messages.
//!
//! Polled side by side (two arms of a `select!`), two streams that both have a message waiting
//! yield them in either order. Where one stream says who serves a name and the other what it
//! said, that swap matters: a service's last announcement taken after its departure is
//! believed although nobody is there to stand by it. zbus numbers every message it receives;
//! its streams order by that number ([`OrderedStream`]), and [`in_bus_order`] follows it.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};

use futures_util::Stream;
use zbus::export::ordered_stream::{
    IntoStream, Join, OrderedStream, OrderedStreamExt, PollResult, join,
};

/// `a` and `b` merged by their ordering (zbus: the receive sequence of each message), ending as
/// soon as either ends: a follower that has lost one of its two inputs must notice, not go on
/// with the other alone.
///
/// Map streams of different item types onto one type first (`OrderedStreamExt::map`); for
/// three, pass two of them joined with `ordered_stream::join` as one.
pub fn in_bus_order<A, B>(a: A, b: B) -> InBusOrder<A, B>
where
    A: OrderedStream + Unpin,
    B: OrderedStream<Data = A::Data, Ordering = A::Ordering> + Unpin,
{
    let ended = Arc::new(AtomicBool::new(false));
    let a = NoticeEnd {
        inner: a,
        ended: ended.clone(),
    };
    let b = NoticeEnd {
        inner: b,
        ended: ended.clone(),
    };
    InBusOrder {
        merged: join(a, b).into_stream(),
        ended,
    }
}

/// The stream [`in_bus_order`] returns.
pub struct InBusOrder<A, B>
where
    A: OrderedStream + Unpin,
    B: OrderedStream<Data = A::Data, Ordering = A::Ordering> + Unpin,
{
    merged: IntoStream<Join<NoticeEnd<A>, NoticeEnd<B>>>,
    ended: Arc<AtomicBool>,
}

impl<A, B> Stream for InBusOrder<A, B>
where
    A: OrderedStream + Unpin,
    B: OrderedStream<Data = A::Data, Ordering = A::Ordering> + Unpin,
{
    type Item = A::Data;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<A::Data>> {
        match Pin::new(&mut self.merged).poll_next(cx) {
            // The join goes on with the other input once one has ended; we stop instead, but
            // only when nothing that came before the end is left to hand out.
            Poll::Pending if self.ended.load(Ordering::Relaxed) => Poll::Ready(None),
            other => other,
        }
    }
}

/// An input of [`InBusOrder`] that records its own end.
struct NoticeEnd<S> {
    inner: S,
    ended: Arc<AtomicBool>,
}

impl<S: OrderedStream + Unpin> OrderedStream for NoticeEnd<S> {
    type Data = S::Data;
    type Ordering = S::Ordering;

    fn poll_next_before(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        before: Option<&Self::Ordering>,
    ) -> Poll<PollResult<Self::Ordering, Self::Data>> {
        let r = Pin::new(&mut self.inner).poll_next_before(cx, before);
        if let Poll::Ready(PollResult::Terminated) = r {
            self.ended.store(true, Ordering::Relaxed);
        }
        r
    }
}

#[cfg(test)]
mod tests {
    use std::collections::VecDeque;

    use futures_util::StreamExt;

    use super::*;

    /// An input that behaves as a zbus signal stream does: its items, then either its end or
    /// "nothing before that point" when asked about a point (zbus knows it has no older
    /// message), else nothing yet.
    struct Scripted {
        name: char,
        items: VecDeque<u64>,
        ends: bool,
    }

    fn scripted(name: char, items: &[u64], ends: bool) -> Scripted {
        Scripted {
            name,
            items: items.iter().copied().collect(),
            ends,
        }
    }

    impl OrderedStream for Scripted {
        type Data = (char, u64);
        type Ordering = u64;

        fn poll_next_before(
            mut self: Pin<&mut Self>,
            _: &mut Context<'_>,
            before: Option<&u64>,
        ) -> Poll<PollResult<u64, (char, u64)>> {
            let name = self.name;
            Poll::Ready(match self.items.pop_front() {
                Some(n) => PollResult::Item {
                    data: (name, n),
                    ordering: n,
                },
                None if self.ends => PollResult::Terminated,
                None if before.is_some() => PollResult::NoneBefore,
                None => return Poll::Pending,
            })
        }
    }

    /// Everything the merged stream yields before it ends or waits.
    fn drain(s: &mut (impl Stream<Item = (char, u64)> + Unpin)) -> (Vec<(char, u64)>, bool) {
        let waker = futures_util::task::noop_waker();
        let mut cx = Context::from_waker(&waker);
        let mut got = Vec::new();
        loop {
            match s.poll_next_unpin(&mut cx) {
                Poll::Ready(Some(x)) => got.push(x),
                Poll::Ready(None) => return (got, true),
                Poll::Pending => return (got, false),
            }
        }
    }

    #[test]
    fn items_come_in_sequence_order_whichever_input_holds_them() {
        let mut s = in_bus_order(
            scripted('o', &[2, 5], false),
            scripted('p', &[1, 3, 4, 6], false),
        );
        let (got, ended) = drain(&mut s);
        let order: Vec<u64> = got.iter().map(|x| x.1).collect();
        assert_eq!(order, [1, 2, 3, 4, 5, 6]);
        assert_eq!(got[1], ('o', 2));
        assert!(!ended, "neither input ended");
    }

    #[test]
    fn the_merge_ends_when_either_input_ends_after_what_came_before() {
        let mut s = in_bus_order(scripted('o', &[2], true), scripted('p', &[1, 3], false));
        let (got, ended) = drain(&mut s);
        assert_eq!(got, [('p', 1), ('o', 2), ('p', 3)]);
        assert!(ended, "went on with one input");

        let mut s = in_bus_order(scripted('o', &[], false), scripted('p', &[], true));
        assert_eq!(drain(&mut s), (vec![], true));
    }
}
