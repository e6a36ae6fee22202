//! Seats per product (L3): prepaid, consumed, and the net change since the store last saved.

use crate::rules::ProductId;

/// One product's seats.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub struct Seat {
    pub prepaid: u32,
    pub consumed: u32,
    /// Net change of `consumed` made by engine steps since [`SeatCounter::clear_deltas`].
    pub delta: i64,
}

/// Seats of every product, indexed by [`ProductId`]. A product past the end has no seat.
///
/// Engine steps only take a seat when one is available (L3), so they never make `consumed`
/// exceed `prepaid`; lowering `prepaid` below `consumed` ([`SeatCounter::set_prepaid`]) takes
/// nothing away, it only blocks new seats.
#[derive(Clone, PartialEq, Eq, Debug, Default)]
pub struct SeatCounter {
    seats: Vec<Seat>,
}

impl SeatCounter {
    /// `product_count` products with no seat bought and none used.
    pub fn new(product_count: usize) -> SeatCounter {
        SeatCounter {
            seats: vec![Seat::default(); product_count],
        }
    }

    fn slot(&mut self, product: ProductId) -> &mut Seat {
        let i = product.index();
        if i >= self.seats.len() {
            self.seats.resize(i + 1, Seat::default());
        }
        &mut self.seats[i]
    }

    /// The seat row of `product` (all zero past the end).
    pub fn get(&self, product: ProductId) -> Seat {
        self.seats.get(product.index()).copied().unwrap_or_default()
    }

    pub fn prepaid(&self, product: ProductId) -> u32 {
        self.get(product).prepaid
    }

    pub fn consumed(&self, product: ProductId) -> u32 {
        self.get(product).consumed
    }

    /// L3: `max(0, prepaid − consumed)`.
    pub fn available(&self, product: ProductId) -> u32 {
        let seat = self.get(product);
        seat.prepaid.saturating_sub(seat.consumed)
    }

    /// The admin bought (or gave back) seats. Nothing else happens (P5).
    pub fn set_prepaid(&mut self, product: ProductId, prepaid: u32) {
        self.slot(product).prepaid = prepaid;
    }

    /// Loading from the store; does not count as a delta.
    pub fn set_consumed(&mut self, product: ProductId, consumed: u32) {
        self.slot(product).consumed = consumed;
    }

    /// Products whose consumption changed since the last [`SeatCounter::clear_deltas`], with the
    /// net change.
    pub fn deltas(&self) -> impl Iterator<Item = (ProductId, i64)> + '_ {
        self.seats
            .iter()
            .enumerate()
            .filter(|(_, s)| s.delta != 0)
            .filter_map(|(i, s)| ProductId::new(i).map(|p| (p, s.delta)))
    }

    pub fn clear_deltas(&mut self) {
        for seat in &mut self.seats {
            seat.delta = 0;
        }
    }

    /// Every product with its row, in id order.
    pub fn iter(&self) -> impl Iterator<Item = (ProductId, Seat)> + '_ {
        self.seats
            .iter()
            .enumerate()
            .filter_map(|(i, s)| ProductId::new(i).map(|p| (p, *s)))
    }

    /// Takes one seat; callers check [`SeatCounter::available`] first (C5). Returns whether a
    /// seat was taken: never past `prepaid`, so a call without a check cannot break L3.
    pub(crate) fn take(&mut self, product: ProductId) -> bool {
        match self.seats.get_mut(product.index()) {
            Some(seat) if seat.consumed < seat.prepaid => {
                seat.consumed += 1;
                seat.delta += 1;
                true
            }
            _ => false,
        }
    }

    pub(crate) fn free(&mut self, product: ProductId) -> bool {
        match self.seats.get_mut(product.index()) {
            Some(seat) if seat.consumed > 0 => {
                seat.consumed -= 1;
                seat.delta -= 1;
                true
            }
            _ => false,
        }
    }
}
