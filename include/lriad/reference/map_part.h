// The parts a normal reference's deviation map joins (reference/reference.h), torch-free so that the
// chains' text (text/evidence.h) can say which part shows an area.
#pragma once

namespace lriad::reference {

// In the order the map joins them by a per-pixel maximum: the colour patches (a part's comparison
// by place), the fine comparison (the high-passed luminance at fine_side: lines and small marks),
// the colour novelty (a colour no normal image of the category shows) and the colour of regions (a
// tint no normal region shows).
enum class MapPart { Patches = 0, Fine = 1, Colour = 2, Region = 3 };
inline constexpr int kMapParts = 4;

}  // namespace lriad::reference
