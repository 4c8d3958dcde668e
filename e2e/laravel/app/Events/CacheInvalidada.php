<?php

namespace App\Events;

use Illuminate\Broadcasting\Channel;
use Illuminate\Contracts\Broadcasting\ShouldBroadcastNow;

// (c) An event with no public property and no broadcastWith: Laravel
// publishes "data": [] (PHP's empty array).
class CacheInvalidada implements ShouldBroadcastNow
{
    public function broadcastOn()
    {
        return new Channel('cache');
    }

    public function broadcastAs()
    {
        return 'cache.invalidada';
    }
}
