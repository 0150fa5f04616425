"""smart-station stream processing: the Faust topology and the pure domain logic it calls."""
